#include "pool/region.h"
