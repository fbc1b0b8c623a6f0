/* ctl.h - resedgectl internals: argument parsing, the profile, the one
 * request function that talks to the hub, and output formatting. */
#ifndef CTL_CTL_H
#define CTL_CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <cjson/cJSON.h>
#include "buf.h"

/* Exit codes. Command functions return one of these. */
enum ctl_exit {
    CTL_OK = 0,
    CTL_ESERVER = 1,     /* the hub answered with an error (printed) */
    CTL_ECONN = 2,       /* could not talk to the hub (printed, with what to check) */
    CTL_EUSAGE = 64,     /* bad command line or profile (printed, with a hint) */
};

#define CTL_MAX_BODY (64u * 1024 * 1024)    /* response bodies larger than this fail */
#define CTL_MAX_INPUT (16u * 1024 * 1024)   /* -f FILE and import files */
#define CTL_CONNECT_TIMEOUT_S 10
#define CTL_TOTAL_TIMEOUT_S 60

/* ---- args.c: one pass over argv with a fixed table of every option ---- */

enum { CTL_OPT_ARG = 1 };            /* the option takes a value */

struct ctl_optdef {
    const char *name;                /* long name without "--" */
    char shrt;                       /* short letter or 0 */
    unsigned flags;
    const char *metavar;             /* "N", "FILE" for options with a value */
    const char *help;                /* "for lists||for changes" when it differs */
};

/* Every option any command accepts; terminated by a NULL name. */
extern const struct ctl_optdef ctl_options[];

#define CTL_MAX_POS 16
#define CTL_MAX_OPTS 256

struct ctl_optval {
    const struct ctl_optdef *def;
    const char *val;                 /* "" for flags */
};

struct ctl_args {
    const char *pos[CTL_MAX_POS];
    size_t npos;
    struct ctl_optval opts[CTL_MAX_OPTS];
    size_t nopts;
};

/* Parses argv[1..argc-1]. On error returns -RE_EINVAL with a message in err. */
int ctl_args_parse(struct ctl_args *out, int argc, char **argv, struct re_buf *err);
/* Last value of option name, or NULL when not given. */
const char *ctl_arg(const struct ctl_args *a, const char *name);
bool ctl_flag(const struct ctl_args *a, const char *name);
/* Iterates values of a repeatable option: start with *it = 0. */
bool ctl_arg_iter(const struct ctl_args *a, const char *name, size_t *it, const char **val);
const struct ctl_optdef *ctl_option_find(const char *name);

/* ---- output.c ---- */

enum ctl_format { CTL_FMT_TABLE, CTL_FMT_JSON, CTL_FMT_YAML };

enum {
    CTL_COL_SHORT = 1,               /* shorten long hex revisions to 12 characters */
    CTL_COL_COUNT = 2,               /* show an array's length */
    CTL_COL_TIME = 4,                /* epoch seconds shown as UTC time */
    CTL_COL_FULL = 8,                /* never cut long text */
    CTL_COL_LINE = 16,               /* only the first line of text */
    CTL_COL_NAMES = 32,              /* an array of objects as their "version" or "name" */
};

struct ctl_column {
    const char *header;
    const char *fields;              /* candidate member names "a|b", dotted for nesting */
    unsigned flags;
};

int ctl_format_parse(enum ctl_format *out, const char *s);
/* Pretty JSON (two-space indent, stable key order as the hub sent it). */
int ctl_print_json(FILE *f, const cJSON *v);
/* YAML via libyaml; strings that would read back as another type are quoted. */
int ctl_print_yaml(FILE *f, const cJSON *v);
/* A table of items (a JSON array of objects). cols NULL: columns from the
 * items' own scalar members. Columns no item has are left out. */
void ctl_print_table(FILE *f, const cJSON *items, const struct ctl_column *cols);
/* One object as aligned "key  value" lines; arrays of objects as sub-tables. */
void ctl_print_object(FILE *f, const cJSON *obj);
/* A value as one table cell: control characters made visible, long text cut. */
int ctl_cell(struct re_buf *out, const cJSON *v, unsigned flags);
/* Resolves "a|b.c" against obj; NULL when none is present. */
const cJSON *ctl_field(const cJSON *obj, const char *fields);
/* Writes text to f with terminal control characters replaced. */
void ctl_print_safe(FILE *f, const char *s);

/* ---- profile.c / client.c ---- */

struct ctl {
    const char *prog;                /* "resedgectl" */
    char *profile_path;              /* the profile read (or to write, for login) */
    bool profile_loaded;
    char *hub;                       /* base URL, no trailing slash */
    char *ca, *cert, *key;           /* file paths */
    enum ctl_format format;
    bool verbose;
    void *curl;                      /* CURL *, created on first request */
};

/* Profiles live in ~/.config/resedge: "default" is resedgectl.conf there,
 * NAME is profiles/NAME.conf, and the file "current" names the one in use. */
#define CTL_PROFILE_DEFAULT "default"
#define CTL_PROFILE_NAME_MAX 64
#define CTL_PROFILES_MAX 256         /* `profiles list` shows at most this many */
/* 0 when name is 1-64 of [A-Za-z0-9._-] not starting with '.' or '-'. */
int ctl_profile_name_check(const char *name);
/* The file of profile name (malloc'd), NULL when out of memory or no HOME. */
char *ctl_profile_path_of(const char *name);
/* Which profile file to use, first that applies: --config FILE, --profile
 * NAME, $RESEDGECTL_CONFIG, $RESEDGECTL_PROFILE, the current profile (not
 * for login: it writes where it is told, or the default), the default.
 * *explicit is false only for the default (it may be missing). 0 with a
 * malloc'd *out, or -1 with a message printed. */
int ctl_profile_locate(char **out, bool *explicit, const struct ctl_args *a, bool for_login);
/* Loads the profile and applies --hub/--ca/--cert/--key over it. When the
 * profile does not exist it is not an error if the flags give everything.
 * Returns CTL_OK or CTL_EUSAGE (message printed). */
int ctl_profile_load(struct ctl *c, const struct ctl_args *a);
/* Strips trailing '/' from the hub URL in place (paths are joined to it);
 * 0, or -1 with a message on stderr when it does not start with https://. */
int ctl_hub_url_check(char *hub);
void ctl_release(struct ctl *c);

struct ctl_req {
    const char *method;              /* "GET" */
    const char *path;                /* "/api/v1/..." with an escaped query */
    const char *base;                /* base URL; NULL: the profile's hub */
    const char *content_type;        /* of body; NULL: application/json */
    const char *body;
    size_t body_len;
    const char *if_match;            /* If-Match header value or NULL */
    const char *ca_pem;              /* trust exactly this CA instead of the profile's */
    bool insecure;                   /* no server verification (login fetches the CA) */
    bool anonymous;                  /* no client certificate */
};

/* Sends one request. On 2xx returns CTL_OK with the body in out (appended).
 * Otherwise prints the hub's error (or what went wrong and what to check) to
 * stderr and returns CTL_ESERVER or CTL_ECONN. *status gets the HTTP status
 * (0 when there was no answer) when status is not NULL. */
int ctl_request(struct ctl *c, const struct ctl_req *r, long *status, struct re_buf *out);
/* ctl_request with a JSON body (NULL: none) and a parsed JSON answer (*out is
 * NULL for an empty body). */
int ctl_call(struct ctl *c, const char *method, const char *path, const cJSON *body,
             const char *if_match, cJSON **out);
/* Appends s percent-encoded (every byte but unreserved ones) to b. */
int ctl_escape(struct re_buf *b, const char *s);
/* Appends "?key=value" or "&key=value" (value escaped) to a path. */
int ctl_query_add(struct re_buf *path, const char *key, const char *value);
/* Prints "error: message (field: f)" for an {"error": ...} body; also prints
 * per-line details ("errors": [{"line": N, ...}]) when present. */
void ctl_print_server_error(const char *body, size_t len, long status);

/* ---- commands.c: the command table ---- */

struct ctl_resource {
    const char *noun;                /* command word: "clusters" */
    const char *singular;            /* "cluster" */
    const char *api;                 /* "/api/v1/clusters" */
    const char *key;                 /* the identifying member: "name" or "path" */
    const struct ctl_column *cols;   /* table columns */
};

struct ctl_cmd;
/* pos: the positional arguments after the command words. Returns an exit code. */
typedef int (*ctl_cmd_fn)(struct ctl *c, const struct ctl_cmd *cmd, const struct ctl_args *a,
                          const char *const *pos, size_t npos);

struct ctl_cmd {
    const char *words;               /* "clusters list" */
    const char *usage;               /* positional usage: "NAME [PATH]" */
    int min_pos, max_pos;
    const char *opts;                /* allowed non-global options, space separated */
    const char *required;            /* options that must be given, space separated */
    const char *summary;
    ctl_cmd_fn fn;
    const struct ctl_resource *res;
    /* For the generic handlers: */
    const char *method;
    const char *tmpl;                /* path with {1} {2}: positionals, percent-encoded */
    const char *body;                /* "name=$1 role": JSON body from positionals/options */
    const char *done;                /* table output on success: "cluster '{1}' revoked" */
    const struct ctl_column *cols;
    bool no_profile;                 /* does not need a profile (login) */
};

/* Terminated by an entry with words == NULL. */
extern const struct ctl_cmd ctl_cmds[];

/* ---- login.c ---- */

/* Normalizes "sha256:AB:CD..." / "abcd..." to 64 lowercase hex; -RE_EINVAL if not one. */
int ctl_fingerprint_normalize(char out[65], const char *in);
int ctl_cmd_login(struct ctl *c, const struct ctl_cmd *cmd, const struct ctl_args *a,
                  const char *const *pos, size_t npos);
/* explain.c: `explain KIND[.FIELD]`, and the fields a create (or an
 * update: no immutable ones) of kind singular ("application") may set, for
 * the command's --help. */
int ctl_cmd_explain(struct ctl *c, const struct ctl_cmd *cmd, const struct ctl_args *a,
                    const char *const *pos, size_t npos);
void ctl_explain_help(FILE *out, const char *singular, bool create);
/* profile.c: `profiles list` and `profiles use NAME`. */
int ctl_cmd_profiles(struct ctl *c, const struct ctl_cmd *cmd, const struct ctl_args *a,
                     const char *const *pos, size_t npos);

#endif
