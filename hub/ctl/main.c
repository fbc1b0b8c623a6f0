/* main.c - resedgectl: finds the command, checks its arguments, prints help,
 * loads the profile and runs it. Exit: 0 ok, 1 hub error, 2 cannot reach the
 * hub, 64 usage. */
#include <stdlib.h>
#include <string.h>
#include "ctl.h"
#include "error.h"

#define GLOBAL_OPTS "config profile hub ca cert key output verbose help version"

static bool word_in(const char *list, const char *word)
{
    size_t n = strlen(word);
    if (!list)
        return false;
    for (const char *p = list; *p;) {
        size_t len = strcspn(p, " ");
        if (len == n && memcmp(p, word, n) == 0)
            return true;
        p += len;
        while (*p == ' ')
            p++;
    }
    return false;
}

static size_t count_words(const char *s)
{
    size_t n = 0;
    for (const char *p = s; *p;) {
        size_t len = strcspn(p, " ");
        n += len > 0;
        p += len;
        while (*p == ' ')
            p++;
    }
    return n;
}

/* The command whose words are the longest prefix of the positionals. */
static const struct ctl_cmd *find_cmd(const struct ctl_args *a, size_t *nwords)
{
    const struct ctl_cmd *best = NULL;
    size_t best_n = 0;

    for (const struct ctl_cmd *cmd = ctl_cmds; cmd->words; cmd++) {
        size_t k = count_words(cmd->words), i = 0;
        const char *p = cmd->words;
        if (k > a->npos || k <= best_n)
            continue;
        for (; i < k; i++) {
            size_t len = strcspn(p, " ");
            if (strlen(a->pos[i]) != len || memcmp(a->pos[i], p, len) != 0)
                break;
            p += len;
            while (*p == ' ')
                p++;
        }
        if (i == k) {
            best = cmd;
            best_n = k;
        }
    }
    *nwords = best_n;
    return best;
}

static bool is_group_word(const char *w)
{
    size_t n = strlen(w);
    for (const struct ctl_cmd *cmd = ctl_cmds; cmd->words; cmd++)
        if (strncmp(cmd->words, w, n) == 0 && cmd->words[n] == ' ')
            return true;
    return false;
}

/* list: the command lists things (options filter) rather than changes them. */
static void print_option(FILE *f, const struct ctl_optdef *d, bool list)
{
    char left[64];
    const char *help = d->help, *alt = strstr(help, "||");
    int n = alt ? (list ? (int)(alt - help) : (int)strlen(alt + 2)) : (int)strlen(help);
    if (alt && !list)
        help = alt + 2;
    if (d->shrt)
        re_snprintf(left, sizeof(left), "-%c, --%s%s%s", d->shrt, d->name, d->metavar ? " " : "",
                    d->metavar ? d->metavar : "");
    else
        re_snprintf(left, sizeof(left), "    --%s%s%s", d->name, d->metavar ? " " : "",
                    d->metavar ? d->metavar : "");
    fprintf(f, "  %-28s %.*s\n", left, n, help);
}

static void print_globals(FILE *f)
{
    fputs("\nglobal options:\n", f);
    for (const struct ctl_optdef *d = ctl_options; d->name; d++)
        if (word_in(GLOBAL_OPTS, d->name))
            print_option(f, d, false);
}

static void print_cmd_line(FILE *f, const struct ctl_cmd *cmd)
{
    char left[96];
    re_snprintf(left, sizeof(left), "%s%s%s", cmd->words, *cmd->usage ? " " : "", cmd->usage);
    fprintf(f, "  %-36s %s\n", left, cmd->summary);
}

static void print_top_help(FILE *f)
{
    fputs("resedgectl - manage a Res-Edge hub: business groups, store clusters, namespaces,\n"
          "applications, policies, configuration, enrollment and GitOps history\n\n"
          "usage: resedgectl [global options] COMMAND [ARGS] [options]\n\ncommands:\n", f);
    for (const struct ctl_cmd *cmd = ctl_cmds; cmd->words; cmd++)
        print_cmd_line(f, cmd);
    print_globals(f);
    fputs("\nThe profile is an INI file ('resedge-hub init' writes DIR/resedgectl.conf):\n"
          "  [hub]\n  url = https://127.0.0.1:8443\n  ca = /path/ca.crt\n"
          "  cert = /path/admin.crt\n  key = /path/admin.key\n"
          "Named profiles: 'resedgectl login --profile NAME' writes\n"
          "~/.config/resedge/profiles/NAME.conf; 'resedgectl profiles use NAME' makes it\n"
          "the current one; --profile NAME picks one for a command. The first that\n"
          "applies wins: --config, --profile, $RESEDGECTL_CONFIG, $RESEDGECTL_PROFILE, the current\n"
          "profile, ~/.config/resedge/resedgectl.conf.\n"
          "\nexit status: 0 done; 1 the hub refused (its message is printed); 2 the hub could\n"
          "not be reached or did not accept the TLS connection; 64 bad usage or profile.\n"
          "Run 'resedgectl COMMAND --help' for a command's options.\n", f);
}

static void print_group_help(FILE *f, const char *group)
{
    size_t n = strlen(group);
    fprintf(f, "usage: resedgectl %s COMMAND [ARGS] [options]\n\ncommands:\n", group);
    for (const struct ctl_cmd *cmd = ctl_cmds; cmd->words; cmd++)
        if (strncmp(cmd->words, group, n) == 0 && cmd->words[n] == ' ')
            print_cmd_line(f, cmd);
    fprintf(f, "\nRun 'resedgectl %s COMMAND --help' for a command's options.\n", group);
}

static void print_cmd_help(FILE *f, const struct ctl_cmd *cmd)
{
    bool any = false;
    size_t wl = strlen(cmd->words);
    bool list = (wl > 5 && strcmp(cmd->words + wl - 5, " list") == 0) ||
                strcmp(cmd->words, "audit") == 0;
    fprintf(f, "usage: resedgectl %s%s%s [options]\n\n%s\n", cmd->words, *cmd->usage ? " " : "",
            cmd->usage, cmd->summary);
    for (const struct ctl_optdef *d = ctl_options; d->name; d++) {
        if (!word_in(cmd->opts, d->name) && !(cmd->required && word_in(cmd->required, d->name)))
            continue;
        if (!any)
            fputs("\noptions:\n", f);
        any = true;
        print_option(f, d, list);
    }
    if (cmd->required && *cmd->required)
        fprintf(f, "\nrequired: --%s\n", cmd->required);
    if (cmd->res && wl > 7 && (strcmp(cmd->words + wl - 7, " create") == 0 ||
                               strcmp(cmd->words + wl - 7, " update") == 0))
        ctl_explain_help(f, cmd->res->singular, cmd->words[wl - 6] == 'c');
    print_globals(f);
}

static int usage_hint(const char *words)
{
    fprintf(stderr, "hint: run 'resedgectl %s%s--help'\n", words ? words : "", words ? " " : "");
    return CTL_EUSAGE;
}

/* Checks options, arguments and required options against the command. */
static int check_cmd(const struct ctl_cmd *cmd, const struct ctl_args *a, size_t nargs)
{
    for (size_t i = 0; i < a->nopts; i++) {
        const char *name = a->opts[i].def->name;
        if (!word_in(GLOBAL_OPTS, name) && !word_in(cmd->opts, name) &&
            !(cmd->required && word_in(cmd->required, name))) {
            fprintf(stderr, "error: option '--%s' does not apply to '%s'\n", name, cmd->words);
            return usage_hint(cmd->words);
        }
    }
    if ((int)nargs < cmd->min_pos || (int)nargs > cmd->max_pos) {
        if ((int)nargs < cmd->min_pos)
            fprintf(stderr, "error: '%s' needs %s\n", cmd->words, cmd->usage);
        else
            fprintf(stderr, "error: too many arguments for '%s' (usage: resedgectl %s%s%s)\n",
                    cmd->words, cmd->words, *cmd->usage ? " " : "", cmd->usage);
        return usage_hint(cmd->words);
    }
    for (const char *p = cmd->required ? cmd->required : ""; *p;) {
        char name[32];
        size_t len = strcspn(p, " ");
        if (len && len < sizeof(name)) {
            memcpy(name, p, len);
            name[len] = '\0';
            if (!ctl_arg(a, name) || !*ctl_arg(a, name)) {
                fprintf(stderr, "error: '%s' needs --%s\n", cmd->words, name);
                return usage_hint(cmd->words);
            }
        }
        p += len;
        while (*p == ' ')
            p++;
    }
    return CTL_OK;
}

int main(int argc, char **argv)
{
    struct ctl c = { .prog = "resedgectl", .format = CTL_FMT_TABLE };
    struct ctl_args a;
    struct re_buf err;
    const struct ctl_cmd *cmd;
    size_t nwords = 0;
    int rc;

    re_buf_init(&err, 4096);
    if (ctl_args_parse(&a, argc, argv, &err) < 0) {
        fprintf(stderr, "error: %s\n", err.ptr ? err.ptr : "bad arguments");
        re_buf_release(&err);
        return usage_hint(NULL);
    }
    re_buf_release(&err);
    if (ctl_flag(&a, "version")) {
        printf("resedgectl %s\n", RE_VERSION);
        return CTL_OK;
    }
    cmd = find_cmd(&a, &nwords);
    if (ctl_flag(&a, "help")) {
        if (cmd)
            print_cmd_help(stdout, cmd);
        else if (a.npos && is_group_word(a.pos[0]))
            print_group_help(stdout, a.pos[0]);
        else
            print_top_help(stdout);
        return CTL_OK;
    }
    if (a.npos == 0) {
        print_top_help(stderr);
        return CTL_EUSAGE;
    }
    if (!cmd) {
        if (is_group_word(a.pos[0])) {
            if (a.npos > 1)
                fprintf(stderr, "error: unknown command '%s %s'\n\n", a.pos[0], a.pos[1]);
            else
                fprintf(stderr, "error: '%s' needs a command\n\n", a.pos[0]);
            print_group_help(stderr, a.pos[0]);
            return CTL_EUSAGE;
        }
        fprintf(stderr, "error: unknown command '%s'\n", a.pos[0]);
        return usage_hint(NULL);
    }
    if ((rc = check_cmd(cmd, &a, a.npos - nwords)) != CTL_OK)
        return rc;
    if (ctl_arg(&a, "output") && ctl_format_parse(&c.format, ctl_arg(&a, "output")) < 0) {
        fprintf(stderr, "error: unknown output format '%s': use table, json or yaml\n",
                ctl_arg(&a, "output"));
        return usage_hint(cmd->words);
    }
    c.verbose = ctl_flag(&a, "verbose");
    if (!cmd->no_profile && (rc = ctl_profile_load(&c, &a)) != CTL_OK)
        goto out;
    rc = cmd->fn(&c, cmd, &a, a.pos + nwords, a.npos - nwords);
    fflush(stdout);
out:
    ctl_release(&c);
    return rc;
}
