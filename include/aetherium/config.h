/*
 * aetherium/config.h - settings from built-in defaults, a YAML file, the
 * environment and the program, in that order of precedence (later wins).
 *
 * Keys are dotted names ("vmm.memory_mb"); docs/config.md lists them all
 * with types and defaults. Every key "a.b" can be overridden by the
 * environment variable AETH_A_B (AETH_DATABASE_URL, AETH_VMM_MEMORY_MB...).
 * The queue weights are a map read with aeth_config_queue_count() and
 * aeth_config_queue_get(); AETH_QUEUE_WEIGHTS="critical=6,low=1" replaces it.
 * List keys (network.taps) take a YAML list or "a,b" and read back as
 * "a,b".
 *
 * Sections of named entries: "images" (images.NAME.kernel, .initrd,
 * .rootfs: files below vmm.image_dir) and "network.profiles"
 * (network.profiles.NAME.allow: egress rules). They come from the file
 * or aeth_config_set(), not from the environment; aeth_config_names()
 * lists an entry's names and aeth_config_get_string() reads a field.
 *
 * Thread safety: an aeth_config may be read from several threads at once
 * (the getters do not modify it) but not while aeth_config_set() or
 * aeth_config_free() runs on it.
 */
#ifndef AETHERIUM_CONFIG_H
#define AETHERIUM_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common.h"

AETH_BEGIN_DECLS

typedef struct aeth_config aeth_config;

/**
 * Build a configuration: defaults, then the YAML file at `path` (NULL: no
 * file), then the environment. On success *out belongs to the caller
 * (aeth_config_free()). A file that cannot be read or is invalid gives
 * AETH_EINVALID (AETH_ENOTFOUND for a missing file, AETH_EIO for an unreadable one) with a message
 * "FILE:LINE: key 'KEY': expected ..., got ..."; a bad environment value
 * names the variable.
 */
AETH_API int aeth_config_load(aeth_config **out, const char *path);

/**
 * The value of `key` as text (any key). *out is borrowed from `cfg`: valid
 * until the next aeth_config_set() on that key or aeth_config_free().
 * Unknown key: AETH_ENOTFOUND.
 */
AETH_API int aeth_config_get_string(const char **out, const aeth_config *cfg,
				    const char *key);

/** The value of an integer key. Unknown: AETH_ENOTFOUND; not an integer key:
 * AETH_EINVALID. */
AETH_API int aeth_config_get_int(int64_t *out, const aeth_config *cfg,
				 const char *key);

/** The value of a boolean key; errors as aeth_config_get_int(). */
AETH_API int aeth_config_get_bool(bool *out, const aeth_config *cfg,
				  const char *key);

/**
 * Set `key` from its text form (what a command-line flag gives), with the
 * same checks as the file: "vmm.memory_mb" "512", "vmm.accel" "tcg".
 * "queue.weights" takes "name=weight,..." and replaces the map;
 * "queue.weights.NAME" sets one queue's weight. The value is copied.
 * Returns 0, AETH_ENOTFOUND (unknown key) or AETH_EINVALID (bad value).
 */
AETH_API int aeth_config_set(aeth_config *cfg, const char *key,
			     const char *value);

/** Number of queues in the weights map (in file order, defaults first). */
AETH_API size_t aeth_config_queue_count(const aeth_config *cfg);

/**
 * The queue at `index` (< aeth_config_queue_count()): its name (borrowed,
 * valid until the map changes or cfg is freed) and weight (>= 1). Either
 * out pointer may be NULL. Index out of range: AETH_EINVALID.
 */
AETH_API int aeth_config_queue_get(const char **name, int *weight,
				   const aeth_config *cfg, size_t index);

/**
 * Where the settings came from, for logs: the file path given to
 * aeth_config_load() or NULL when there was none. Borrowed from cfg.
 */
AETH_API const char *aeth_config_path(const aeth_config *cfg);

/**
 * The names of the entries of `section` ("images", "network.profiles"),
 * in file order, NULL-terminated, in *names_out (the caller's:
 * aeth_strarray_free()). AETH_ENOTFOUND for an unknown section.
 */
AETH_API int aeth_config_names(char ***names_out, const aeth_config *cfg,
			       const char *section);

/** A deep copy of `cfg` in *out (the caller's: aeth_config_free()). */
AETH_API int aeth_config_dup(aeth_config **out, const aeth_config *cfg);

/** Free a configuration. NULL is accepted. */
AETH_API void aeth_config_free(aeth_config *cfg);

AETH_END_DECLS

#endif
