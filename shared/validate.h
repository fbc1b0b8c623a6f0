/* validate.h - the name rules both daemons apply: DNS-1123 labels,
 * Kubernetes label keys and values, group paths, metadata keys and values,
 * identities, free text. Each check returns 0, or
 * -RE_EINVAL and sets *why (when not NULL) to a static message a person can
 * act on ("must be at most 63 characters"). */
#ifndef RE_VALIDATE_H
#define RE_VALIDATE_H

#include <stdbool.h>
#include <stddef.h>
#include "buf.h"

#define VALIDATE_LABEL_MAX      63
#define VALIDATE_PATH_MAX       255     /* a whole group path */
#define VALIDATE_KEY_MAX        253     /* metadata and configuration keys */
#define VALIDATE_VALUE_MAX      4096    /* one metadata or configuration value */
#define VALIDATE_TEXT_MAX       4096    /* descriptions */

/* A DNS-1123 label: 1-63 of a-z 0-9 '-', starting and ending alphanumeric. */
int validate_dns_label(struct re_str s, const char **why);

/* A Kubernetes label value: empty, or 1-63 of A-Z a-z 0-9 '-' '_' '.',
 * starting and ending alphanumeric. */
int validate_label_value(struct re_str s, const char **why);
/* A Kubernetes label key: [prefix/]name, the name as a non-empty label
 * value, the optional prefix a DNS subdomain of at most 253. */
int validate_label_key(struct re_str s, const char **why);

/* A group path: "/seg/seg...", at least one segment; each segment 1-63 of
 * A-Z a-z 0-9 '.' '_' '-', never "." or "..", no empty segment, no trailing
 * '/'; at most VALIDATE_PATH_MAX bytes. */
int validate_group_path(struct re_str s, const char **why);

/* A metadata or configuration key: 1-VALIDATE_KEY_MAX of A-Z a-z 0-9 '.' '_'
 * '-' (the set Kubernetes accepts for ConfigMap keys; never '/', which ends a
 * key in `/m/<key>/<value>`). */
int validate_key(struct re_str s, const char **why);

/* A metadata or configuration value, or any other free text of at most max
 * bytes: valid UTF-8, no control characters other than '\n' and '\t' (C0,
 * DEL and C1 are refused). Everything else, YAML-significant text included,
 * is stored exactly as given. */
int validate_text(struct re_str s, size_t max, const char **why);
static inline int validate_value(struct re_str s, const char **why)
{
    return validate_text(s, VALIDATE_VALUE_MAX, why);
}

/* An identity as certificates name it: "user/<name>" or "cluster/<name>",
 * the name a DNS-1123 label (user names may also hold '.', '_' and '@'). */
int validate_identity(struct re_str s, const char **why);

/* A version string of an application: a non-empty Kubernetes label value
 * (it labels what it renders): 1-63 of A-Z a-z 0-9 '.' '-' '_', starting and
 * ending alphanumeric. */
int validate_version(struct re_str s, const char **why);

/* Compares two version strings segment by segment (split at '.' and '-'):
 * numeric segments numerically, others bytewise; numeric sorts before text.
 * "1.10" > "1.9" > "1". Returns <0, 0, >0. */
int validate_version_cmp(const char *a, const char *b);

/* A relative file path for a stored kustomize base: segments of printable
 * ASCII other than '\\' and ':', no "." or ".." segment, no leading '/',
 * at most 255 bytes. */
int validate_file_path(struct re_str s, const char **why);

/* A Kubernetes resource quantity ("500m", "2", "1.5", "8Gi"). */
int validate_quantity(struct re_str s, const char **why);

#endif
