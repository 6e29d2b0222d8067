/* moebench public interface: everything. */
#ifndef MOE_MOE_H
#define MOE_MOE_H

#include "moe/backend.h"
#include "moe/classify.h"
#include "moe/codec.h"
#include "moe/dtype.h"
#include "moe/expert.h"
#include "moe/layer.h"
#include "moe/memory.h"
#include "moe/models.h"
#include "moe/norm.h"
#include "moe/registry.h"
#include "moe/rng.h"
#include "moe/routing.h"
#include "moe/status.h"

#define MOE_VERSION_MAJOR 0
#define MOE_VERSION_MINOR 1
#define MOE_VERSION_PATCH 0
#define MOE_VERSION_STRING "0.1.0"

#endif
