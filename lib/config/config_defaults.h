/*
 * lib/config/config_defaults.h - the built-in defaults of the key table
 * (keys.c), for the modules whose options structs take 0 as "the
 * default": the options and the configuration then share one default
 * (docs/config.md, "One source of truth").
 */
#ifndef AETH_CONFIG_DEFAULTS_H
#define AETH_CONFIG_DEFAULTS_H

/*
 * The default of integer key `key` ("vmm.boot_timeout_ms") as written in
 * the key table. A key that is not an integer key with a default there
 * is a programming error: it aborts, so that a typo cannot quietly turn
 * a default into 0.
 */
unsigned int aeth__config_default_uint(const char *key);

#endif
