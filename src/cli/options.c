/* options.c — the one option parser and the --help it writes (options.h). */
#include "cli/options.h"
#include "cli/cmd.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>


/* ----------------------------------------------------------------------------
 * Finding an option */

/* -h and --help belong to every command; the tables do not list them. */
static const Option help_option = { .kind = OPTION_FLAG, .name = "help", .short_name = 'h' };

static int takes_value(const Option *o) {
    return o->kind == OPTION_INT || o->kind == OPTION_FLOAT || o->kind == OPTION_STRING || o->kind == OPTION_CHOICE ||
           (o->kind == OPTION_CALL && o->value);
}

static int is_option(const Option *o) { return o->kind != OPTION_GROUP && o->name; }

/* Does the long name `name` (n bytes; exactly, or as a prefix) match o's
 * name or one of its old spellings? The spelling matched goes to *full. */
static int long_match(const Option *o, const char *name, size_t n, int exact, const char **full, size_t *full_n) {
    if (strncmp(o->name, name, n) == 0 && (!exact || o->name[n] == 0)) {
        *full = o->name, *full_n = strlen(o->name);
        return 1;
    }
    for (const char *a = o->aliases; a && *a;) {
        size_t len = strcspn(a, " ");
        if (len >= n && strncmp(a, name, n) == 0 && (!exact || len == n)) {
            *full = a, *full_n = len;
            return 1;
        }
        a += len;
        a += strspn(a, " ");
    }
    return 0;
}

/* The option called --name (n bytes): an exact name or old spelling first,
 * else the one option that name is a prefix of, as getopt_long allowed. */
static const Option *find_long(const char *cmd, const Option *opts, const char *name, size_t n, char *spelled,
                               size_t cap) {
    const char *full = NULL;
    size_t full_n = 0;
    for (int exact = 1; exact >= 0; exact--) {
        const Option *found = NULL;
        int ambiguous = 0;
        for (const Option *o = opts;; o++) {
            const Option *cand = o->kind == OPTION_END ? &help_option : o;
            const char *f;
            size_t fn;
            if (is_option(cand) && long_match(cand, name, n, exact, &f, &fn)) {
                if (found && found != cand) ambiguous = 1;
                if (!found) found = cand, full = f, full_n = fn;
            }
            if (o->kind == OPTION_END) break;
        }
        if (ambiguous) {
            char list[512] = "";
            for (const Option *o = opts;; o++) {
                const Option *cand = o->kind == OPTION_END ? &help_option : o;
                const char *f;
                size_t fn, len = strlen(list);
                if (is_option(cand) && long_match(cand, name, n, 0, &f, &fn))
                    snprintf(list + len, sizeof list - len, "%s--%.*s", len ? ", " : "", (int)fn, f);
                if (o->kind == OPTION_END) break;
            }
            die(NM_EINPUT, "%s: option '--%.*s' is ambiguous (%s)", cmd, (int)n, name, list);
        }
        if (found) {
            snprintf(spelled, cap, "--%.*s", (int)full_n, full);
            return found;
        }
    }
    return NULL;
}

static const Option *find_short(const Option *opts, char c) {
    if (c == 'h') return &help_option;
    for (const Option *o = opts; o->kind != OPTION_END; o++)
        if (is_option(o) && o->short_name == c) return o;
    return NULL;
}

/* ----------------------------------------------------------------------------
 * Checking and storing a value */

/* "up, gate or down" */
static void choice_list(const char *const *choices, char *out, size_t cap) {
    out[0] = 0;
    for (int i = 0; choices[i]; i++) {
        size_t len = strlen(out);
        snprintf(out + len, cap - len, "%s%s", i == 0 ? "" : choices[i + 1] ? ", " : " or ", choices[i]);
    }
}

/* "0..100", "(0, 1]", "0..inf" */
static void float_range(const Option *o, char *out, size_t cap) {
    char hi[32];
    if (isinf(o->fmax)) snprintf(hi, sizeof hi, "inf");
    else snprintf(hi, sizeof hi, "%g", o->fmax);
    if (o->min_open) snprintf(out, cap, "(%g, %s]", o->fmin, hi);
    else snprintf(out, cap, "%g..%s", o->fmin, hi);
}

static void apply(const char *cmd, const Option *o, const char *spelled, const char *arg) {
    switch (o->kind) {
    case OPTION_FLAG: *(int *)o->dest = o->set_to; break;
    case OPTION_INT: {
        long v;
        if (!parse_long(arg, &v) || v < o->min || v > o->max)
            die(NM_EINPUT, "%s: %s must be a whole number in %ld..%ld, not '%s'", cmd, spelled, o->min, o->max, arg);
        *(long *)o->dest = v;
        break;
    }
    case OPTION_FLOAT: {
        double v;
        int ok = parse_float(arg, &v);
        if (!ok && isinf(o->fmax) && strcmp(arg, "inf") == 0) v = INFINITY, ok = 1; /* no upper bound: "inf" too */
        if (!ok || v < o->fmin || (o->min_open && v == o->fmin) || v > o->fmax) {
            char range[80];
            float_range(o, range, sizeof range);
            die(NM_EINPUT, "%s: %s must be a number in %s, not '%s'", cmd, spelled, range, arg);
        }
        *(double *)o->dest = v;
        break;
    }
    case OPTION_STRING: *(const char **)o->dest = arg; break;
    case OPTION_CHOICE: {
        int i = 0;
        while (o->choices[i] && strcmp(arg, o->choices[i]) != 0) i++;
        if (!o->choices[i]) {
            char list[256];
            choice_list(o->choices, list, sizeof list);
            die(NM_EINPUT, "%s: %s must be %s, not '%s'", cmd, spelled, list, arg);
        }
        *(int *)o->dest = i;
        break;
    }
    case OPTION_CALL: {
        Error e = { 0 };
        if (o->call(o->dest, o->set_to, arg, &e)) die(NM_EINPUT, "%s: %s", cmd, e.msg);
        break;
    }
    default: break;
    }
    if (o->seen) *o->seen = 1;
}

/* ----------------------------------------------------------------------------
 * The parser */

int options_parse(const CommandHelp *c, Option *opts, int argc, char **argv) {
    int n = 0, only_args = 0;
    for (int i = 1; i < argc; i++) {
        char *a = argv[i];
        if (only_args || a[0] != '-' || a[1] == 0) { /* an argument ("-" is one: stdin) */
            argv[1 + n++] = a;
            continue;
        }
        if (strcmp(a, "--") == 0) {
            only_args = 1;
            continue;
        }
        if (a[1] == '-') { /* --name, --name=VALUE, --name VALUE */
            const char *name = a + 2, *eq = strchr(name, '=');
            size_t len = eq ? (size_t)(eq - name) : strlen(name);
            char spelled[128];
            const Option *o = find_long(c->name, opts, name, len, spelled, sizeof spelled);
            if (!o) die(NM_EINPUT, "%s: unknown option '--%.*s' (see 'neuromap %s --help')", c->name, (int)len, name, c->name);
            if (o == &help_option) {
                options_help(c, opts, stdout);
                exit(NM_OK);
            }
            const char *value = NULL;
            if (takes_value(o)) {
                if (eq) value = eq + 1;
                else if (i + 1 < argc) value = argv[++i];
                else die(NM_EINPUT, "%s: %s needs a value", c->name, spelled);
            } else if (eq) {
                die(NM_EINPUT, "%s: %s takes no value, not '%s'", c->name, spelled, eq + 1);
            }
            apply(c->name, o, spelled, value);
            continue;
        }
        for (int j = 1; a[j]; j++) { /* -c, -cVALUE, -c VALUE, -abc */
            const Option *o = find_short(opts, a[j]);
            char spelled[3] = { '-', a[j], 0 };
            if (!o) die(NM_EINPUT, "%s: unknown option '%s' (see 'neuromap %s --help')", c->name, spelled, c->name);
            if (o == &help_option) {
                options_help(c, opts, stdout);
                exit(NM_OK);
            }
            if (!takes_value(o)) {
                apply(c->name, o, spelled, NULL);
                continue;
            }
            const char *value = a[j + 1] ? a + j + 1 : i + 1 < argc ? argv[++i] : NULL;
            if (!value) die(NM_EINPUT, "%s: %s needs a value", c->name, spelled);
            apply(c->name, o, spelled, value);
            break;
        }
    }
    return n;
}

/* ----------------------------------------------------------------------------
 * --help */

enum { HELP_COLUMN = 22 }; /* where an option's help text starts */

static void help_line(FILE *out, const char *left, const char *help) {
    int w = fprintf(out, "  %s", left);
    const char *line = help;
    for (int first = 1; *line; first = 0) {
        size_t len = strcspn(line, "\n");
        if (first && w < HELP_COLUMN - 1) fprintf(out, "%*s", HELP_COLUMN - w, "");
        else fprintf(out, "\n%*s", HELP_COLUMN, "");
        fprintf(out, "%.*s", (int)len, line);
        line += len;
        if (*line) line++;
    }
    fputc('\n', out);
}

void options_help(const CommandHelp *c, const Option *opts, FILE *out) {
    fprintf(out, "%s\n%s\n", c->usage, c->about);
    for (const Option *o = opts; o->kind != OPTION_END; o++) {
        if (o->kind == OPTION_GROUP) {
            fputs(o->help, out);
            continue;
        }
        if (!o->help) continue; /* described by a GROUP's text */
        char left[128];
        int n = 0;
        if (o->short_name) n += snprintf(left + n, sizeof left - n, "-%c, ", o->short_name);
        n += snprintf(left + n, sizeof left - n, "--%s", o->name);
        if (takes_value(o)) snprintf(left + n, sizeof left - n, " %s", o->value);
        if (o->aliases) {
            char help[1024], *p = help;
            p += snprintf(help, sizeof help, "%s\n(also ", o->help);
            for (const char *a = o->aliases; *a;) {
                size_t len = strcspn(a, " ");
                p += snprintf(p, sizeof help - (size_t)(p - help), "%s--%.*s", a == o->aliases ? "" : ", ", (int)len, a);
                a += len;
                a += strspn(a, " ");
            }
            snprintf(p, sizeof help - (size_t)(p - help), ", its old spelling)");
            help_line(out, left, help);
        } else {
            help_line(out, left, o->help);
        }
    }
    help_line(out, "-h, --help", "this help");
    if (c->after) fputs(c->after, out);
}

/* ----------------------------------------------------------------------------
 * Shared option sets */

int options_prompt(void *dest, int code, const char *arg, Error *e) {
    prompt_option(dest, code, arg);
    return NM_OK;
}

int options_hook(void *dest, int code, const char *arg, Error *e) { return hook_option(dest, code, arg, e) < 0; }

void options_parse_args(const CommandHelp *c, Option *opts, int argc, char **argv, int n, const char *what) {
    if (options_parse(c, opts, argc, argv) != n) die(NM_EINPUT, "%s: expected %s (see 'neuromap %s --help')", c->name, what, c->name);
}

const char *const options_kv_types[] = { "f32", "f16", NULL };
