/* args.c - resedgectl's command line: one table of every option, parsed in
 * one pass so global options may appear anywhere (before or after the command). */
#include <string.h>
#include "ctl.h"
#include "error.h"

const struct ctl_optdef ctl_options[] = {
    /* global */
    { "config", 0, CTL_OPT_ARG, "FILE", "CLI profile (default $RESEDGECTL_CONFIG, then ~/.config/resedge/resedgectl.conf)" },
    { "profile", 0, CTL_OPT_ARG, "NAME", "use the named profile (see 'resedgectl profiles list'); login: write it" },
    { "hub", 0, CTL_OPT_ARG, "URL", "hub URL, e.g. https://hub.example:8443 (overrides the profile)" },
    { "ca", 0, CTL_OPT_ARG, "FILE", "CA certificate of the hub (overrides the profile)" },
    { "cert", 0, CTL_OPT_ARG, "FILE", "client certificate (overrides the profile)" },
    { "key", 0, CTL_OPT_ARG, "FILE", "client private key (overrides the profile)" },
    { "output", 'o', CTL_OPT_ARG, "FORMAT", "output format: table (default), json or yaml" },
    { "verbose", 'v', 0, NULL, "print each request and its status on stderr" },
    { "help", 'h', 0, NULL, "show help" },
    { "version", 0, 0, NULL, "print the version" },
    /* lists */
    { "limit", 0, CTL_OPT_ARG, "N", "at most N items per page (1-1000)" },
    { "search", 0, CTL_OPT_ARG, "TEXT", "only items whose name contains TEXT" },
    { "group", 0, CTL_OPT_ARG, "PATH", "only clusters in group PATH (or its subgroups)||a group the cluster is in (repeatable; the list replaces the old one)" },
    { "expression", 0, CTL_OPT_ARG, "EXPR", "only clusters EXPR selects (e.g. '/g/rings/beta and not /m/ring/prod')||the selection expression (which clusters get it)" },
    { "metadata", 0, CTL_OPT_ARG, "K=V", "only items whose metadata K is V (repeatable)||set metadata K to V (repeatable)" },
    { "namespace", 0, CTL_OPT_ARG, "NAME", "apps list: only applications in namespace NAME" },
    { "orderby", 0, CTL_OPT_ARG, "FIELD", "sort by FIELD: name, id, created_at or updated_at (append ' desc')" },
    { "pinned", 0, 0, NULL, "only clusters a revert pinned (release one with 'clusters unpin')" },
    { "all", 0, 0, NULL, "follow the \"next\" cursor and print every page" },
    { "next", 0, CTL_OPT_ARG, "CURSOR", "start at CURSOR (from a previous page's \"next\")" },
    /* changes */
    { "set", 0, CTL_OPT_ARG, "F=V", "set field F to the string V; F:=JSON sets a JSON value; a.b=V nests (repeatable)" },
    { "set-file", 0, CTL_OPT_ARG, "F=FILE", "set field F to the text of FILE (e.g. yaml=policy.yaml) (repeatable)" },
    { "file", 'f', CTL_OPT_ARG, "FILE", "read the request body from a JSON file (- for stdin); flags apply on top" },
    { "if-match", 0, CTL_OPT_ARG, "REVISION", "only change it if its revision (the record's \"version\" counter) is still REVISION (else 412)" },
    { "dry-run", 0, 0, NULL, "show what would change, change nothing" },
    { "diff", 0, CTL_OPT_ARG, "CLUSTER", "with --dry-run: show the diff of CLUSTER's files (implies --dry-run; revert: the reverted cluster's)" },
    { "create-groups", 0, 0, NULL, "create groups the file names that do not exist yet" },
    { "cascade", 0, 0, NULL, "also delete what the item still holds" },
    /* audit */
    { "entity", 0, CTL_OPT_ARG, "ENTITY", "only changes of KIND or KIND/NAME (e.g. cluster/store-0042, group//stores/central)" },
    { "actor", 0, CTL_OPT_ARG, "NAME", "only changes made by NAME (a person's name, user/NAME or cluster/NAME)" },
    /* enrollment */
    { "ttl", 0, CTL_OPT_ARG, "DURATION", "how long the code is valid (e.g. 30m, 24h; default 24h)" },
    { "role", 0, CTL_OPT_ARG, "ROLE", "admin, operator, appteam, technician or viewer" },
    { "code", 0, CTL_OPT_ARG, "CODE", "one-time enrollment code (<id>.<secret>)" },
    { "ca-fingerprint", 0, CTL_OPT_ARG, "sha256:HEX", "SHA-256 fingerprint of the hub's CA certificate" },
    { "force", 0, 0, NULL, "replace an existing profile and its key" },
    { "replace", 0, 0, NULL, "take over the identity of a store whose agent is online (its node is being replaced; audited)" },
    /* gitops */
    { "to", 0, CTL_OPT_ARG, "REV", "revision to restore: a commit id (4+ hex digits) or main~N" },
    { "rev", 0, CTL_OPT_ARG, "REV", "read the files at revision REV instead of the branch head" },
    { NULL, 0, 0, NULL, NULL },
};

const struct ctl_optdef *ctl_option_find(const char *name)
{
    for (const struct ctl_optdef *d = ctl_options; d->name; d++)
        if (strcmp(d->name, name) == 0)
            return d;
    return NULL;
}

static const struct ctl_optdef *find_long(const char *name, size_t len)
{
    for (const struct ctl_optdef *d = ctl_options; d->name; d++)
        if (strlen(d->name) == len && memcmp(d->name, name, len) == 0)
            return d;
    return NULL;
}

static const struct ctl_optdef *find_short(char c)
{
    for (const struct ctl_optdef *d = ctl_options; d->name; d++)
        if (d->shrt && d->shrt == c)
            return d;
    return NULL;
}

static int add_opt(struct ctl_args *a, const struct ctl_optdef *d, const char *val,
                   struct re_buf *err)
{
    if (a->nopts == CTL_MAX_OPTS) {
        re_buf_printf(err, "too many options (at most %d)", CTL_MAX_OPTS);
        return -RE_EINVAL;
    }
    a->opts[a->nopts].def = d;
    a->opts[a->nopts].val = val;
    a->nopts++;
    return 0;
}

int ctl_args_parse(struct ctl_args *out, int argc, char **argv, struct re_buf *err)
{
    bool only_pos = false;

    memset(out, 0, sizeof(*out));
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        const struct ctl_optdef *d;
        const char *val = NULL;

        if (only_pos || s[0] != '-' || s[1] == '\0') {
            if (out->npos == CTL_MAX_POS) {
                re_buf_printf(err, "too many arguments (at most %d)", CTL_MAX_POS);
                return -RE_EINVAL;
            }
            out->pos[out->npos++] = s;
            continue;
        }
        if (strcmp(s, "--") == 0) {
            only_pos = true;
            continue;
        }
        if (s[1] == '-') {
            const char *eq = strchr(s + 2, '=');
            size_t len = eq ? (size_t)(eq - s - 2) : strlen(s + 2);
            d = find_long(s + 2, len);
            if (!d) {
                re_buf_printf(err, "unknown option '%.*s'", (int)(len + 2), s);
                return -RE_EINVAL;
            }
            if (eq) {
                if (!(d->flags & CTL_OPT_ARG)) {
                    re_buf_printf(err, "option '--%s' takes no value", d->name);
                    return -RE_EINVAL;
                }
                val = eq + 1;
            }
        } else {
            d = find_short(s[1]);
            if (!d) {
                re_buf_printf(err, "unknown option '-%c'", s[1]);
                return -RE_EINVAL;
            }
            if (s[2] != '\0') {
                if (!(d->flags & CTL_OPT_ARG)) {
                    re_buf_printf(err, "option '-%c' takes no value", s[1]);
                    return -RE_EINVAL;
                }
                val = s + 2;
            }
        }
        if ((d->flags & CTL_OPT_ARG) && !val) {
            if (i + 1 >= argc) {
                re_buf_printf(err, "option '--%s' needs a value (%s)", d->name, d->metavar);
                return -RE_EINVAL;
            }
            val = argv[++i];
        }
        if (add_opt(out, d, val ? val : "", err) < 0)
            return -RE_EINVAL;
    }
    return 0;
}

const char *ctl_arg(const struct ctl_args *a, const char *name)
{
    const char *v = NULL;
    for (size_t i = 0; i < a->nopts; i++)
        if (strcmp(a->opts[i].def->name, name) == 0)
            v = a->opts[i].val;
    return v;
}

bool ctl_flag(const struct ctl_args *a, const char *name)
{
    return ctl_arg(a, name) != NULL;
}

bool ctl_arg_iter(const struct ctl_args *a, const char *name, size_t *it, const char **val)
{
    for (size_t i = *it; i < a->nopts; i++) {
        if (strcmp(a->opts[i].def->name, name) == 0) {
            *val = a->opts[i].val;
            *it = i + 1;
            return true;
        }
    }
    *it = a->nopts;
    return false;
}
