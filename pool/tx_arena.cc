#include "pool/tx_arena.h"
