/* The bridge from the ZEROPOOL_* options (config/) to a pool configuration: one mapping,
 * used by zp_config_init for the defaults and by the preload library for the environment. */
#ifndef ZP_CONFIG_MAP_H
#define ZP_CONFIG_MAP_H

#include "zeropool.h"
#include "zp_options.h"

void zp_config_from_options(zp_config_t *cfg, const zp_options_t *o);

#endif
