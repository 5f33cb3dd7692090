/* Value parsers of the policy language. */
#include "policy.h"

#include <ctype.h>
#include <netinet/in.h>
#include <signal.h>
#include <string.h>

#include "../sandbox/util.h"

/* The number syntax of the policy language: decimal digits, then, if
 * max_frac > 0, an optional '.' and 1 to max_frac digits; no sign,
 * exponent, hex or white space. *ret = number * mult, the fraction
 * truncated; *ret_end points after the number. -ERANGE past UINT64_MAX. */
static int parse_number(const char *s, uint64_t mult, unsigned max_frac, const char **ret_end,
                        uint64_t *ret) {
        unsigned __int128 x = 0, frac = 0, scale = 1;
        unsigned k = 0;

        if (!isdigit((unsigned char)*s))
                return -EINVAL;
        for (; isdigit((unsigned char)*s); s++) {
                x = x * 10 + (*s - '0');
                if (x > UINT64_MAX)
                        return -ERANGE;
        }
        if (*s == '.' && max_frac > 0) {
                if (!isdigit((unsigned char)s[1]))
                        return -EINVAL;
                for (s++; isdigit((unsigned char)*s); s++, k++) {
                        if (k >= max_frac)
                                return -EINVAL;
                        frac = frac * 10 + (*s - '0');
                        scale *= 10;
                }
        }
        x = x * mult + frac * mult / scale;
        if (x > UINT64_MAX)
                return -ERANGE;
        *ret_end = s;
        *ret = (uint64_t)x;
        return 0;
}

int parse_count(const char *s, uint64_t *ret) {
        const char *end;
        uint64_t v;
        int r = parse_number(s, 1, 0, &end, &v);

        if (r < 0)
                return r;
        if (*end)
                return -EINVAL;
        *ret = v;
        return 0;
}

int parse_decimal(const char *s, uint64_t mult, unsigned max_frac, uint64_t *ret) {
        const char *end;
        uint64_t v;
        int r = parse_number(s, mult, max_frac, &end, &v);

        if (r < 0)
                return r;
        if (*end)
                return -EINVAL;
        *ret = v;
        return 0;
}

int parse_duration(const char *s, uint64_t *ret_usec) {
        static const struct { const char *suffix; uint64_t mult; } units[] = {
                { "ms", USEC_PER_MSEC }, { "s", USEC_PER_SEC }, { "m", 60 * USEC_PER_SEC },
                { "min", 60 * USEC_PER_SEC }, { "h", 3600 * USEC_PER_SEC },
        };
        const char *end;
        uint64_t v;
        int r;

        /* The unit decides the multiplier, so find it first: after the
         * digits and the fraction. */
        end = s + strspn(s, "0123456789.");
        for (size_t i = 0; i < ELEMENTSOF(units); i++) {
                const char *e;
                if (strcmp(end, units[i].suffix) != 0)
                        continue;
                r = parse_number(s, units[i].mult, 9, &e, &v);
                if (r < 0)
                        return r;
                if (e != end)
                        return -EINVAL;
                *ret_usec = v;
                return 0;
        }
        return -EINVAL;
}

int parse_size(const char *s, uint64_t *ret_bytes) {
        static const struct { char suffix; unsigned shift; } units[] = {
                { 'K', 10 }, { 'M', 20 }, { 'G', 30 }, { 'T', 40 },
        };
        const char *end = s + strspn(s, "0123456789.");
        uint64_t v;
        int r;

        if (!*end)      /* bytes: a whole number */
                return parse_count(s, ret_bytes);
        if (end[1])
                return -EINVAL;
        for (size_t i = 0; i < ELEMENTSOF(units); i++) {
                const char *e;
                if (toupper((unsigned char)*end) != units[i].suffix)
                        continue;
                r = parse_number(s, 1ULL << units[i].shift, 9, &e, &v);
                if (r < 0)
                        return r;
                if (e != end)
                        return -EINVAL;
                *ret_bytes = v;
                return 0;
        }
        return -EINVAL;
}

static int parse_port(const char *s, size_t len, uint16_t *ret) {
        unsigned long v = 0;

        if (len == 0 || len > 5)
                return -EINVAL;
        for (size_t i = 0; i < len; i++) {
                if (!isdigit((unsigned char)s[i]))
                        return -EINVAL;
                v = v * 10 + (s[i] - '0');
        }
        if (v < 1 || v > 65535)
                return -EINVAL;
        *ret = (uint16_t)v;
        return 0;
}

int parse_port_map(const char *s, struct port_map *ret) {
        const char *colon = strchr(s, ':'), *slash = strchr(s, '/');
        struct port_map m = { .proto = IPPROTO_TCP };
        const char *inner_end;

        if (!colon)
                return -EINVAL;
        inner_end = slash ? slash : s + strlen(s);
        if (inner_end < colon)
                return -EINVAL;
        if (parse_port(s, colon - s, &m.public_port) < 0 ||
            parse_port(colon + 1, inner_end - colon - 1, &m.inner_port) < 0)
                return -EINVAL;
        if (slash) {
                if (strcmp(slash + 1, "tcp") == 0)
                        m.proto = IPPROTO_TCP;
                else if (strcmp(slash + 1, "udp") == 0)
                        m.proto = IPPROTO_UDP;
                else
                        return -EINVAL;
        }
        *ret = m;
        return 0;
}

const char *proto_to_string(int proto) {
        return proto == IPPROTO_UDP ? "udp" : "tcp";
}

int parse_signal(const char *s, int *ret) {
        static const struct { const char *name; int sig; } sigs[] = {
                { "HUP", SIGHUP }, { "INT", SIGINT }, { "QUIT", SIGQUIT }, { "TERM", SIGTERM },
                { "USR1", SIGUSR1 }, { "USR2", SIGUSR2 }, { "WINCH", SIGWINCH },
        };

        if (strcmp(s, "none") == 0) {
                *ret = 0;
                return 0;
        }
        if (strncmp(s, "SIG", 3) == 0)
                s += 3;
        for (size_t i = 0; i < ELEMENTSOF(sigs); i++)
                if (strcmp(s, sigs[i].name) == 0) {
                        *ret = sigs[i].sig;
                        return 0;
                }
        return -EINVAL;
}

int split_words(const char *s, char ***ret) {
        _cleanup_strv_free_ char **v = NULL;
        size_t n = strlen(s);
        _cleanup_free_ char *word = malloc(n + 1);

        if (!word)
                return -ENOMEM;
        for (const char *p = s;;) {
                size_t len = 0;
                bool have = false;

                while (*p == ' ' || *p == '\t')
                        p++;
                if (!*p)
                        break;
                while (*p && *p != ' ' && *p != '\t') {
                        have = true;
                        if (*p == '\'') {
                                const char *e = strchr(p + 1, '\'');
                                if (!e)
                                        return -EINVAL;
                                memcpy(word + len, p + 1, e - p - 1);
                                len += e - p - 1;
                                p = e + 1;
                        } else if (*p == '"') {
                                for (p++; *p && *p != '"'; p++) {
                                        if (*p == '\\' && (p[1] == '"' || p[1] == '\\'))
                                                p++;
                                        word[len++] = *p;
                                }
                                if (*p != '"')
                                        return -EINVAL;
                                p++;
                        } else if (*p == '\\') {
                                if (!p[1])
                                        return -EINVAL;
                                word[len++] = p[1];
                                p += 2;
                        } else
                                word[len++] = *p++;
                }
                if (have) {
                        word[len] = 0;
                        if (strv_push(&v, strdup(word)) < 0)
                                return -ENOMEM;
                }
        }
        if (!v)
                return -EINVAL;
        *ret = TAKE_PTR(v);
        return 0;
}
