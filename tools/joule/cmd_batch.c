/* tools/joule/cmd_batch.c: `joule batch MANIFEST.json [--jobs N] [--shard K/N] [--resume]`: runs
 * every model of a manifest (compress with its recipe, save, measure against the original,
 * write its report) in child processes, up to N at once. Each child is a fork of this process
 * that calls the library (joule_batch_run_job) and sends its result back as one JSON record
 * through a pipe; a child that fails or crashes is recorded with its error and the others go
 * on. Then summary.csv and summary.json are written atomically. Exit status: 0 all done,
 * 1 some model failed, 2 usage error, 3 none failed but some fell below min_accuracy. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "commands.h"
#include "joule/report.h"
#include "report_cli.h"

static const char CMD[] = "batch";

static void usage(FILE *f)
{
    fprintf(f,
        "usage: joule batch MANIFEST.json [--jobs N] [--shard K/N] [--resume] [options]\n"
        "Compresses, measures and reports every model of the manifest; writes one report folder\n"
        "per model and summary.csv / summary.json.\n"
        "  --jobs N          run up to N models at once, each in its own process (default 1)\n"
        "  --shard K/N       take only every N-th model starting at the K-th, counting from 0\n"
        "                    (models i with i %% N == K): shards 0/N .. N-1/N cover the manifest\n"
        "                    once; their summaries are summary.shard-K-of-N.csv/json\n"
        "  --resume          skip models whose output and report are newer than the model, the\n"
        "                    recipe file and the data, and whose report has the same recipe\n"
        "  --threads N       engine threads per model (default: cores / jobs)\n"
        "  --summary-dir D   where the summary goes (default: the manifest's summary_dir, else\n"
        "                    its folder)\n"
        "  --no-latency      do not time the models\n"
        "  --no-energy       do not meter energy (it is metered only with --jobs 1)\n"
        "  --dry-run         list the models the options select and whether they are up to date\n"
        "  --json            print summary.json on stdout instead of one line per model\n"
        "Manifest: {\"summary_dir\": \"out\", \"defaults\": {\"data\": D, \"limit\": N,\n"
        "  \"recipe\": R, \"min_accuracy\": A}, \"models\": [{\"name\": ..., \"model\": \"m.onnx\",\n"
        "  \"output\": \"out/m.onnx\", \"recipe\": {\"passes\": [...]} or \"recipe.json\",\n"
        "  \"data\": ..., \"limit\": ..., \"report\": \"out/m.report\", \"min_accuracy\": ...}]}\n"
        "Relative paths are relative to the manifest's folder.\n");
}

typedef struct batch_args {
    const char *manifest, *summary_dir;
    size_t jobs, shard_k, shard_n;
    int threads;
    bool have_shard, resume, no_latency, no_energy, dry_run, json;
} batch_args;

static int parse_args(int argc, char **argv, batch_args *a)
{
    a->jobs = 1;
    a->threads = -1;
    for (int i = 1; i < argc; i++) {
        bool missing = false;
        const char *v;
        size_t n;
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--resume")) {
            a->resume = true;
        } else if (!strcmp(argv[i], "--no-latency")) {
            a->no_latency = true;
        } else if (!strcmp(argv[i], "--no-energy")) {
            a->no_energy = true;
        } else if (!strcmp(argv[i], "--dry-run")) {
            a->dry_run = true;
        } else if (!strcmp(argv[i], "--json")) {
            a->json = true;
        } else if ((v = rc_opt(argc, argv, &i, "--jobs", &missing)) ||
                   (v = rc_opt(argc, argv, &i, "-j", &missing))) {
            if (!rc_parse_size(v, 1, &a->jobs) || a->jobs > 1024)
                return cli_usage(CMD, "--jobs wants a count from 1 to 1024, got '%s'", v);
        } else if ((v = rc_opt(argc, argv, &i, "--shard", &missing))) {
            joule_error e;
            if (joule_parse_shard(v, &a->shard_k, &a->shard_n, &e))
                return cli_usage(CMD, "--shard: %s", e.msg);
            a->have_shard = true;
        } else if ((v = rc_opt(argc, argv, &i, "--threads", &missing))) {
            if (!rc_parse_size(v, 0, &n) || n > 4096)
                return cli_usage(CMD, "--threads wants a count >= 0, got '%s'", v);
            a->threads = (int)n;
        } else if ((v = rc_opt(argc, argv, &i, "--summary-dir", &missing))) {
            a->summary_dir = v;
        } else if (missing) {
            return cli_usage(CMD, "%s needs a value", argv[i]);
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return cli_usage(CMD, "unknown option '%s'", argv[i]);
        } else if (a->manifest) {
            return cli_usage(CMD, "one manifest only ('%s' and '%s')", a->manifest, argv[i]);
        } else {
            a->manifest = argv[i];
        }
    }
    if (!a->manifest)
        return cli_usage(CMD, "no MANIFEST.json given");
    return -1;
}

/* ---- children ---- */

typedef struct child {
    pid_t pid;
    int fd;          /* read end of its result pipe, -1 once closed */
    size_t job;
    char *buf;
    size_t len, cap;
} child;

static bool write_all(int fd, const char *s, size_t n)
{
    while (n) {
        ssize_t w = write(fd, s, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        s += w;
        n -= (size_t)w;
    }
    return true;
}

/* In the child: run the job, send the result, leave without touching the parent's stdio. */
static void child_main(const joule_batch_job *j, const joule_batch_run_options *ro, int fd)
{
    joule_batch_result res;
    joule_error err = {{0}};
    joule_batch_run_job(j, ro, &res, &err);
    char *json = NULL;
    if (joule_batch_result_json(&res, &json, &err) == JOULE_OK) {
        bool ok = write_all(fd, json, strlen(json));
        free(json);
        close(fd);
        _exit(ok ? 0 : 1);
    }
    _exit(1);
}

static int start_child(const joule_batch_manifest *m, size_t job, const joule_batch_run_options *ro,
                       child *kids, size_t n_kids, child *c)
{
    int p[2];
    if (pipe(p) != 0)
        return -1;
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        close(p[0]);
        close(p[1]);
        return -1;
    }
    if (pid == 0) {
        close(p[0]);
        for (size_t i = 0; i < n_kids; i++)
            if (kids[i].fd >= 0)
                close(kids[i].fd);
        child_main(&m->jobs[job], ro, p[1]);
    }
    close(p[1]);
    memset(c, 0, sizeof *c);
    c->pid = pid;
    c->fd = p[0];
    c->job = job;
    return 0;
}

/* Reads what is there; returns false at end of file (or an error). */
static bool read_some(child *c)
{
    char chunk[4096];
    ssize_t r = read(c->fd, chunk, sizeof chunk);
    if (r < 0 && (errno == EINTR || errno == EAGAIN))
        return true;
    if (r <= 0)
        return false;
    if (c->len + (size_t)r + 1 > c->cap) {
        size_t cap = (c->len + (size_t)r + 1) * 2;
        char *b = realloc(c->buf, cap);
        if (!b)
            return false;
        c->buf = b;
        c->cap = cap;
    }
    memcpy(c->buf + c->len, chunk, (size_t)r);
    c->len += (size_t)r;
    c->buf[c->len] = 0;
    return true;
}

/* After end of file: reap the child and turn what it sent into a result. */
static void finish_child(child *c, joule_batch_result *res)
{
    int status = 0;
    while (waitpid(c->pid, &status, 0) < 0 && errno == EINTR)
        ;
    close(c->fd);
    c->fd = -1;
    joule_error err = {{0}};
    if (c->buf && c->len && joule_batch_result_parse(c->buf, res, &err) == JOULE_OK) {
        /* the child's own record */
    } else {
        memset(res, 0, sizeof *res);
        res->state = JOULE_BATCH_FAILED;
        if (WIFSIGNALED(status))
            snprintf(res->error, sizeof res->error, "crashed: signal %d (%s)", WTERMSIG(status),
                     strsignal(WTERMSIG(status)));
        else
            snprintf(res->error, sizeof res->error, "exited with status %d and no result",
                     WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    }
    free(c->buf);
    c->buf = NULL;
}

static void print_line(const joule_batch_manifest *m, size_t job, const joule_batch_result *r,
                       size_t done, size_t total)
{
    const joule_batch_job *j = &m->jobs[job];
    printf("[%zu/%zu] %-24s %-9s", done, total, j->name, joule_batch_state_name(r->state));
    if (r->state == JOULE_BATCH_FAILED) {
        printf(" %s\n", r->error);
        return;
    }
    if (r->bytes_before)
        printf(" %.1f kB -> %.1f kB", (double)r->bytes_before / 1e3, (double)r->bytes_after / 1e3);
    if (r->top1_before.measured && r->top1_after.measured)
        printf(", top-1 %.2f%% -> %.2f%%", 100 * r->top1_before.value, 100 * r->top1_after.value);
    if (r->latency_before_ms.measured && r->latency_after_ms.measured)
        printf(", %.3g -> %.3g ms", r->latency_before_ms.value, r->latency_after_ms.value);
    if (r->seconds > 0)
        printf(" (%.1f s)", r->seconds);
    if (r->state == JOULE_BATCH_BELOW_MIN)
        printf(": %s", r->error);
    printf("\n");
}

int joule_cmd_batch(int argc, char **argv)
{
    batch_args a;
    memset(&a, 0, sizeof a);
    int rc = parse_args(argc, argv, &a);
    if (rc >= 0)
        return rc;
    joule_error err = {{0}};
    joule_batch_manifest *m;
    if (joule_batch_manifest_load(a.manifest, &m, &err))
        return cli_error(CMD, &err);
    joule_batch_result *res = calloc(m->n_jobs ? m->n_jobs : 1, sizeof *res);
    size_t *queue = calloc(m->n_jobs ? m->n_jobs : 1, sizeof *queue);
    child *kids = calloc(a.jobs, sizeof *kids);
    if (!res || !queue || !kids) {
        free(res);
        free(queue);
        free(kids);
        joule_batch_manifest_free(m);
        fprintf(stderr, "joule %s: out of memory\n", CMD);
        return 1;
    }
    size_t n_queue = 0, selected = 0, finished = 0;
    for (size_t i = 0; i < m->n_jobs; i++)
        selected += !a.have_shard || joule_shard_selects(i, a.shard_k, a.shard_n);
    for (size_t i = 0; i < m->n_jobs; i++) {
        if (a.have_shard && !joule_shard_selects(i, a.shard_k, a.shard_n))
            continue;
        bool fresh = (a.resume || a.dry_run) && joule_batch_up_to_date(&m->jobs[i]);
        if (a.dry_run) {
            printf("%zu %s %s\n", i, m->jobs[i].name, fresh ? "up-to-date" : "to-run");
            continue;
        }
        if (fresh && joule_batch_result_from_report(&m->jobs[i], &res[i], &err) == JOULE_OK) {
            finished++;
            if (!a.json)
                print_line(m, i, &res[i], finished, selected);
            continue;
        }
        queue[n_queue++] = i;
    }
    if (a.dry_run) {
        free(res);
        free(queue);
        free(kids);
        joule_batch_manifest_free(m);
        return 0;
    }
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    joule_batch_run_options ro = {
        .threads = a.threads >= 0 ? a.threads
                                  : (int)(cores > (long)a.jobs ? cores / (long)a.jobs : 1),
        .skip_latency = a.no_latency,
        /* one package counter sees every running job: energy only when they run alone */
        .skip_energy = a.jobs > 1 || a.no_energy,
        .concurrent = a.jobs > 1 && n_queue > 1,
    };
    for (size_t i = 0; i < a.jobs; i++)
        kids[i].fd = -1;
    size_t next = 0, running = 0;
    while (next < n_queue || running) {
        for (size_t s = 0; s < a.jobs && next < n_queue; s++) {
            if (kids[s].fd >= 0)
                continue;
            size_t job = queue[next++];
            if (start_child(m, job, &ro, kids, a.jobs, &kids[s]) != 0) {
                res[job].state = JOULE_BATCH_FAILED;
                snprintf(res[job].error, sizeof res[job].error, "cannot start a process: %s",
                         strerror(errno));
                finished++;
                if (!a.json)
                    print_line(m, job, &res[job], finished, selected);
                continue;
            }
            running++;
        }
        if (!running)
            continue;
        struct pollfd pfd[1024];
        size_t slot[1024], np = 0;
        for (size_t s = 0; s < a.jobs; s++) {
            if (kids[s].fd < 0)
                continue;
            pfd[np].fd = kids[s].fd;
            pfd[np].events = POLLIN;
            pfd[np].revents = 0;
            slot[np++] = s;
        }
        if (poll(pfd, (nfds_t)np, -1) < 0 && errno != EINTR)
            break;
        for (size_t k = 0; k < np; k++) {
            if (!pfd[k].revents)
                continue;
            child *c = &kids[slot[k]];
            if (read_some(c))
                continue;
            finish_child(c, &res[c->job]);
            running--;
            finished++;
            if (!a.json)
                print_line(m, c->job, &res[c->job], finished, selected);
            fflush(stdout);
        }
    }
    char stem[96] = "summary";
    if (a.have_shard)
        snprintf(stem, sizeof stem, "summary.shard-%zu-of-%zu", a.shard_k, a.shard_n);
    const char *sdir = a.summary_dir ? a.summary_dir : m->summary_dir;
    rc = 0;
    if (joule_batch_write_summary(m, res, sdir, stem, &err)) {
        rc = cli_error(CMD, &err);
    } else if (a.json) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s.json", sdir, stem);
        FILE *f = fopen(path, "r");
        char buf[8192];
        size_t r;
        while (f && (r = fread(buf, 1, sizeof buf, f)) > 0)
            fwrite(buf, 1, r, stdout);
        if (f)
            fclose(f);
    } else {
        printf("summary   %s/%s.csv and %s.json\n", sdir, stem, stem);
    }
    size_t failed = 0, below = 0;
    for (size_t i = 0; i < m->n_jobs; i++) {
        failed += res[i].state == JOULE_BATCH_FAILED;
        below += res[i].state == JOULE_BATCH_BELOW_MIN;
    }
    if (!rc && failed) {
        fprintf(stderr, "joule batch: %zu of %zu models failed (see the summary)\n", failed,
                selected);
        rc = 1;
    } else if (!rc && below) {
        fprintf(stderr, "joule batch: %zu of %zu models fell below their min_accuracy\n", below,
                selected);
        rc = 3;
    }
    free(res);
    free(queue);
    free(kids);
    joule_batch_manifest_free(m);
    return rc;
}
