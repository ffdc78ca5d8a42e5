#include "pool/stats.h"
