/*
 * cdnlab-delayd: the userspace delay/jitter/loss server of the `nfqueue` shaping backend.
 *
 * One process per machine serves every delayed link of a run. Each link has a namespace in
 * the middle of its wire (see nfqueue.py) where iptables sends each direction's packets to
 * its own NFQUEUE number; this server opens one nfnetlink socket inside each of those
 * namespaces (setns to /proc/PID/ns/net, socket, setns back), holds only packet ids, gives
 * a drop verdict at once for a lost packet and accepts the rest when their delay is over,
 * one batch verdict per queue per release. One epoll wait serves every socket and every
 * queue's next release, so a wake-up releases whatever is due on all links at once
 * (DESIGN.md, "The emulator's own cost"). Release times never go backwards within a queue,
 * so jitter does not reorder packets.
 *
 *   cdnlab-delayd --config FILE --log FILE [--t0 EPOCH]
 *   cdnlab-delayd --replay            (queue logic only, lines on stdin; for unit tests)
 *
 * Config, one item per line ('#' starts a comment):
 *   link NAME PID SEED                 a link namespace, held by process PID
 *   queue NUMBER DELAY_MS JITTER_MS LOSS_PCT   a direction of the link above
 * SIGHUP re-reads it: every value is checked before any applies, new values apply to
 * packets that arrive afterwards, and the set of links and queues cannot change. SIGTERM
 * releases every held packet and exits. Prints `ready` on stdout once every queue is bound.
 * Events are JSON lines (`t` = seconds since --t0): ready, config, config_error,
 * queue_stats (each link, every second), stop (totals and the server's CPU seconds).
 * Runs with 1 ns timer slack and at SCHED_FIFO 10 where allowed (cdnlab/net/sched.py).
 *
 * The kernel side: linux/netfilter/nfnetlink_queue.h. Metadata-only copies with GSO kept
 * whole (NFQA_CFG_F_GSO), so a 64 KB super-packet costs one id; the kernel's receive
 * timestamp (NFQA_TIMESTAMP, turned on by any SO_TIMESTAMP socket) starts each delay.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_queue.h>
#include <linux/netlink.h>
#include <math.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_SERVED 512
#define MAX_QUEUES 2
#define QUEUE_MAXLEN 65536
#define RECEIVE_BUFFER (64 * 1024 * 1024)
#define BATCH 64
#define SLOT 2048
#define LATENESS_GAIN 0.05
#define MAX_ADVANCE_NS 2000000.0
#define STATS_INTERVAL_NS 1000000000LL
#define DELAY_PRIORITY 10

typedef struct {
    int64_t release;
    uint32_t id;
} Held;

typedef struct {
    int number;
    double delay_ns, jitter_ns, loss;
    uint64_t rng;
    Held *ring;
    size_t cap, head, count;
    int64_t last_release;
    uint64_t packets, dropped, stamped, released;
    double receive_lag_ns, release_lag_ns, lag_max_ns;
    uint64_t seen_packets, seen_dropped, seen_released;
    double seen_lag_ns;
} Queue;

typedef struct {
    char name[64];
    int pid;
    uint64_t seed;
    int fd;
    int nq;
    Queue q[MAX_QUEUES];
} Link;

typedef struct {
    char name[64];
    int pid;
    uint64_t seed;
    int nq;
    int number[MAX_QUEUES];
    double delay_ms[MAX_QUEUES], jitter_ms[MAX_QUEUES], loss_pct[MAX_QUEUES];
} LinkConfig;

static Link links[MAX_SERVED];
static int nlinks;
static FILE *log_file;
static double t0;
static double advance_ns;

static int64_t mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static double wall_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* splitmix64: a small seeded generator, one stream per queue (seed and queue number) */
static uint64_t next_random(uint64_t *state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static double uniform01(uint64_t *state) { return (next_random(state) >> 11) * 0x1.0p-53; }

static void event(const char *node, const char *name, const char *fmt, ...) {
    if (!log_file) return;
    fprintf(log_file, "{\"t\":%.6f,\"node\":\"%s\",\"event\":\"%s\"", wall_s() - t0, node, name);
    if (fmt && *fmt) {
        va_list args;
        va_start(args, fmt);
        fputc(',', log_file);
        vfprintf(log_file, fmt, args);
        va_end(args);
    }
    fputs("}\n", log_file);
    fflush(log_file);
}

/* ---- the queue: held ids with their release times ---------------------------------- */

static void queue_init(Queue *q, int number, uint64_t seed) {
    memset(q, 0, sizeof *q);
    q->number = number;
    q->rng = seed * 1000003ULL + (uint64_t)number * 7919ULL + 1;
    q->cap = 1024;
    q->ring = malloc(q->cap * sizeof(Held));
    if (!q->ring) abort();
}

static void queue_push(Queue *q, int64_t release, uint32_t id) {
    if (q->count == q->cap) {
        Held *grown = malloc(2 * q->cap * sizeof(Held));
        if (!grown) abort();
        for (size_t i = 0; i < q->count; i++) grown[i] = q->ring[(q->head + i) % q->cap];
        free(q->ring);
        q->ring = grown;
        q->head = 0;
        q->cap *= 2;
    }
    q->ring[(q->head + q->count) % q->cap] = (Held){release, id};
    q->count++;
}

/* Hold a packet for its delay, counted from when it arrived in the kernel; 0 if it is to
 * be dropped (the loss model). */
static int queue_admit(Queue *q, int64_t now, int64_t arrived, uint32_t id) {
    q->packets++;
    if (q->loss > 0 && uniform01(&q->rng) < q->loss) {
        q->dropped++;
        return 0;
    }
    double release = (double)arrived + q->delay_ns;
    if (q->jitter_ns > 0) release += (2.0 * uniform01(&q->rng) - 1.0) * q->jitter_ns;
    int64_t at = (int64_t)release;
    if (at < q->last_release) at = q->last_release;
    if (at < now) at = now;
    q->last_release = at;
    queue_push(q, at, id);
    return 1;
}

/* Pop every packet due by `horizon`; 1 and the highest such id in *last, else 0. */
static int queue_due(Queue *q, int64_t now, int64_t horizon, uint32_t *last) {
    int any = 0;
    while (q->count && q->ring[q->head].release <= horizon) {
        Held h = q->ring[q->head];
        q->head = (q->head + 1) % q->cap;
        q->count--;
        double lag = (double)(now - h.release);
        q->release_lag_ns += lag;
        if (lag > q->lag_max_ns) q->lag_max_ns = lag;
        q->released++;
        *last = h.id;
        any = 1;
    }
    return any;
}

/* ---- config ------------------------------------------------------------------------- */

static int parse_config(const char *path, LinkConfig *out, int *count, char *error,
                        size_t error_size) {
    FILE *file = fopen(path, "r");
    if (!file) {
        snprintf(error, error_size, "cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    char line[512];
    int n = 0, lineno = 0;
    while (fgets(line, sizeof line, file)) {
        lineno++;
        char *hash = strchr(line, '#');
        if (hash) *hash = 0;
        char word[16] = "";
        if (sscanf(line, "%15s", word) != 1) continue;
        if (!strcmp(word, "link")) {
            if (n == MAX_SERVED) {
                snprintf(error, error_size, "line %d: more than %d links", lineno, MAX_SERVED);
                goto fail;
            }
            LinkConfig *c = &out[n];
            memset(c, 0, sizeof *c);
            unsigned long long seed;
            if (sscanf(line, " link %63s %d %llu", c->name, &c->pid, &seed) != 3 ||
                c->pid < 0) {
                snprintf(error, error_size, "line %d: expected `link NAME PID SEED`", lineno);
                goto fail;
            }
            c->seed = seed;
            n++;
        } else if (!strcmp(word, "queue")) {
            LinkConfig *c = n ? &out[n - 1] : NULL;
            int number;
            double delay, jitter, loss;
            if (!c || sscanf(line, " queue %d %lf %lf %lf", &number, &delay, &jitter, &loss) != 4) {
                snprintf(error, error_size,
                         "line %d: expected `queue NUMBER DELAY_MS JITTER_MS LOSS_PCT` "
                         "after a link line", lineno);
                goto fail;
            }
            if (c->nq == MAX_QUEUES || number < 0 || number > 65535) {
                snprintf(error, error_size, "line %d: queue %d: at most %d queues a link, "
                         "numbered 0-65535", lineno, number, MAX_QUEUES);
                goto fail;
            }
            if (!(delay >= 0 && jitter >= 0 && loss >= 0 && loss < 100 && isfinite(delay) &&
                  isfinite(jitter))) {
                snprintf(error, error_size, "line %d: impairment out of range: delay_ms %g "
                         "jitter_ms %g loss_pct %g", lineno, delay, jitter, loss);
                goto fail;
            }
            c->number[c->nq] = number;
            c->delay_ms[c->nq] = delay;
            c->jitter_ms[c->nq] = jitter;
            c->loss_pct[c->nq] = loss;
            c->nq++;
        } else if (!strcmp(word, "seed")) {
            continue; /* replay mode's own line; ignored here */
        } else {
            snprintf(error, error_size, "line %d: unknown item `%s`", lineno, word);
            goto fail;
        }
    }
    fclose(file);
    *count = n;
    return 0;
fail:
    fclose(file);
    return -1;
}

static void configure_queue(Queue *q, double delay_ms, double jitter_ms, double loss_pct) {
    q->delay_ns = delay_ms * 1e6;
    q->jitter_ns = jitter_ms * 1e6;
    q->loss = loss_pct / 100.0;
}

static void log_config(const Link *link) {
    char body[512];
    int used = snprintf(body, sizeof body, "\"queues\":{");
    for (int i = 0; i < link->nq; i++) {
        const Queue *q = &link->q[i];
        used += snprintf(body + used, sizeof body - used,
                         "%s\"%d\":{\"delay_ms\":%g,\"jitter_ms\":%g,\"loss_pct\":%g}",
                         i ? "," : "", q->number, q->delay_ns / 1e6, q->jitter_ns / 1e6,
                         q->loss * 100.0);
    }
    snprintf(body + used, sizeof body - used, "}");
    event(link->name, "config", "%s", body);
}

/* Apply a re-read config: the same links and queues, new values; nothing on error. */
static void reload(const char *path) {
    static LinkConfig fresh[MAX_SERVED];
    int n = 0;
    char error[256] = "";
    if (parse_config(path, fresh, &n, error, sizeof error) == 0) {
        for (int i = 0; i < n && !error[0]; i++) {
            Link *link = NULL;
            for (int j = 0; j < nlinks; j++)
                if (!strcmp(links[j].name, fresh[i].name)) link = &links[j];
            if (!link) {
                snprintf(error, sizeof error, "link %s is not served by this process",
                         fresh[i].name);
                break;
            }
            for (int k = 0; k < fresh[i].nq; k++) {
                int found = 0;
                for (int m = 0; m < link->nq; m++) found |= link->q[m].number == fresh[i].number[k];
                if (!found) {
                    snprintf(error, sizeof error, "link %s has no queue %d", link->name,
                             fresh[i].number[k]);
                    break;
                }
            }
        }
    }
    if (error[0]) {
        /* keep serving with the shapes in force: a link that stops delaying or drops
         * everything would be worse than one that keeps its old shape */
        char escaped[512];
        size_t o = 0;
        for (const char *c = error; *c && o < sizeof escaped - 2; c++) {
            if (*c == '"' || *c == '\\') escaped[o++] = '\\';
            escaped[o++] = *c;
        }
        escaped[o] = 0;
        event("delayd", "config_error", "\"error\":\"%s\",\"path\":\"%s\"", escaped, path);
        return;
    }
    for (int i = 0; i < n; i++)
        for (int j = 0; j < nlinks; j++) {
            if (strcmp(links[j].name, fresh[i].name)) continue;
            for (int k = 0; k < fresh[i].nq; k++)
                for (int m = 0; m < links[j].nq; m++)
                    if (links[j].q[m].number == fresh[i].number[k])
                        configure_queue(&links[j].q[m], fresh[i].delay_ms[k],
                                        fresh[i].jitter_ms[k], fresh[i].loss_pct[k]);
            log_config(&links[j]);
        }
}

/* ---- nfnetlink_queue messages --------------------------------------------------------- */

static size_t message(char *buf, int type, int queue, uint16_t flags) {
    struct nlmsghdr *nlh = (struct nlmsghdr *)buf;
    nlh->nlmsg_len = NLMSG_LENGTH(sizeof(struct nfgenmsg));
    nlh->nlmsg_type = (NFNL_SUBSYS_QUEUE << 8) | type;
    nlh->nlmsg_flags = NLM_F_REQUEST | flags;
    nlh->nlmsg_seq = 0;
    nlh->nlmsg_pid = 0;
    struct nfgenmsg *nfg = NLMSG_DATA(nlh);
    nfg->nfgen_family = AF_UNSPEC;
    nfg->version = NFNETLINK_V0;
    nfg->res_id = htons((uint16_t)queue);
    return nlh->nlmsg_len;
}

static void attr(char *buf, int kind, const void *data, size_t size) {
    struct nlmsghdr *nlh = (struct nlmsghdr *)buf;
    struct nlattr *a = (struct nlattr *)(buf + NLMSG_ALIGN(nlh->nlmsg_len));
    a->nla_type = kind;
    a->nla_len = NLA_HDRLEN + size;
    memcpy((char *)a + NLA_HDRLEN, data, size);
    nlh->nlmsg_len = NLMSG_ALIGN(nlh->nlmsg_len) + NLA_ALIGN(a->nla_len);
}

/* Send a config request and wait for its ack; -errno on refusal. */
static int request(int fd, char *buf) {
    if (send(fd, buf, ((struct nlmsghdr *)buf)->nlmsg_len, 0) < 0) return -errno;
    char reply[4096];
    ssize_t got = recv(fd, reply, sizeof reply, 0);
    if (got < 0) return -errno;
    struct nlmsghdr *nlh = (struct nlmsghdr *)reply;
    if (nlh->nlmsg_type == NLMSG_ERROR) return ((struct nlmsgerr *)NLMSG_DATA(nlh))->error;
    return 0;
}

static int bind_queue(int fd, int queue, int command) {
    char buf[256];
    message(buf, NFQNL_MSG_CONFIG, queue, NLM_F_ACK);
    struct nfqnl_msg_config_cmd cmd = {.command = command, .pf = htons(AF_UNSPEC)};
    attr(buf, NFQA_CFG_CMD, &cmd, sizeof cmd);
    return request(fd, buf);
}

static int configure_kernel_queue(int fd, int queue) {
    char buf[256];
    message(buf, NFQNL_MSG_CONFIG, queue, NLM_F_ACK);
    struct nfqnl_msg_config_params params = {.copy_range = 0, .copy_mode = NFQNL_COPY_META};
    attr(buf, NFQA_CFG_PARAMS, &params, sizeof params);
    uint32_t maxlen = htonl(QUEUE_MAXLEN), gso = htonl(NFQA_CFG_F_GSO);
    attr(buf, NFQA_CFG_QUEUE_MAXLEN, &maxlen, sizeof maxlen);
    attr(buf, NFQA_CFG_FLAGS, &gso, sizeof gso);
    attr(buf, NFQA_CFG_MASK, &gso, sizeof gso);
    return request(fd, buf);
}

static void send_verdict(int fd, int queue, uint32_t id, int batch, uint32_t verdict) {
    char buf[64];
    message(buf, batch ? NFQNL_MSG_VERDICT_BATCH : NFQNL_MSG_VERDICT, queue, 0);
    struct nfqnl_msg_verdict_hdr hdr = {.verdict = htonl(verdict), .id = htonl(id)};
    attr(buf, NFQA_VERDICT_HDR, &hdr, sizeof hdr);
    send(fd, buf, ((struct nlmsghdr *)buf)->nlmsg_len, 0);
}

/* A socket inside the namespace of `pid`, bound to `link`'s queues. */
static int open_link(Link *link, char *error, size_t error_size) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/ns/net", link->pid);
    int target = open(path, O_RDONLY | O_CLOEXEC);
    int home = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    if (target < 0 || home < 0 || setns(target, CLONE_NEWNET) < 0) {
        snprintf(error, error_size, "%s: cannot enter %s: %s", link->name, path,
                 strerror(errno));
        return -1;
    }
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
    int saved = errno;
    setns(home, CLONE_NEWNET);
    close(target);
    close(home);
    if (fd < 0) {
        snprintf(error, error_size, "%s: netlink socket: %s", link->name, strerror(saved));
        return -1;
    }
    int size = RECEIVE_BUFFER, one = 1;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size);
    setsockopt(fd, SOL_NETLINK, NETLINK_NO_ENOBUFS, &one, sizeof one);
    struct sockaddr_nl local = {.nl_family = AF_NETLINK};
    if (bind(fd, (struct sockaddr *)&local, sizeof local) < 0) {
        snprintf(error, error_size, "%s: bind: %s", link->name, strerror(errno));
        return -1;
    }
    for (int i = 0; i < link->nq; i++) {
        int rc = bind_queue(fd, link->q[i].number, NFQNL_CFG_CMD_BIND);
        if (!rc) rc = configure_kernel_queue(fd, link->q[i].number);
        if (rc) {
            snprintf(error, error_size, "%s: queue %d: nfnetlink_queue refused: %s",
                     link->name, link->q[i].number, strerror(-rc));
            return -1;
        }
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    link->fd = fd;
    return 0;
}

/* Parse one datagram: admit each queued packet of `link`. */
static void take(Link *link, const char *buf, size_t size, int64_t now, double clock_offset_ns) {
    const struct nlmsghdr *nlh = (const struct nlmsghdr *)buf;
    for (; NLMSG_OK(nlh, size); nlh = NLMSG_NEXT(nlh, size)) {
        if (nlh->nlmsg_type != ((NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET)) continue;
        const struct nfgenmsg *nfg = NLMSG_DATA(nlh);
        int number = ntohs(nfg->res_id);
        Queue *q = NULL;
        for (int i = 0; i < link->nq; i++)
            if (link->q[i].number == number) q = &link->q[i];
        if (!q) continue;
        const struct nlattr *a = (const struct nlattr *)((const char *)nfg + NLMSG_ALIGN(sizeof *nfg));
        int remaining = (int)nlh->nlmsg_len - (int)((const char *)a - (const char *)nlh);
        uint32_t id = 0;
        int have_id = 0;
        int64_t arrived = now;
        while (remaining >= NLA_HDRLEN && a->nla_len >= NLA_HDRLEN && a->nla_len <= remaining) {
            int kind = a->nla_type & NLA_TYPE_MASK;
            const char *data = (const char *)a + NLA_HDRLEN;
            if (kind == NFQA_PACKET_HDR && a->nla_len >= NLA_HDRLEN + 4) {
                id = ntohl(((const struct nfqnl_msg_packet_hdr *)data)->packet_id);
                have_id = 1;
            } else if (kind == NFQA_TIMESTAMP && a->nla_len >= NLA_HDRLEN + 16) {
                const struct nfqnl_msg_packet_timestamp *ts = (const void *)data;
                double wall = (double)be64toh(ts->sec) * 1e9 + (double)be64toh(ts->usec) * 1e3;
                int64_t at = (int64_t)(wall - clock_offset_ns);
                if (at < now) arrived = at;
                q->stamped++;
                q->receive_lag_ns += (double)(now - arrived);
            }
            remaining -= NLA_ALIGN(a->nla_len);
            a = (const struct nlattr *)((const char *)a + NLA_ALIGN(a->nla_len));
        }
        if (have_id && !queue_admit(q, now, arrived, id))
            send_verdict(link->fd, q->number, id, 0, NF_DROP);
    }
}

static void drain(Link *link) {
    static char buffers[BATCH][SLOT];
    static struct mmsghdr msgs[BATCH];
    static struct iovec iov[BATCH];
    for (int i = 0; i < BATCH; i++) {
        iov[i] = (struct iovec){buffers[i], SLOT};
        msgs[i].msg_hdr = (struct msghdr){.msg_iov = &iov[i], .msg_iovlen = 1};
    }
    for (;;) {
        int got = recvmmsg(link->fd, msgs, BATCH, MSG_DONTWAIT, NULL);
        if (got <= 0) return;
        int64_t now = mono_ns();
        struct timespec wall;
        clock_gettime(CLOCK_REALTIME, &wall);
        double offset = (double)wall.tv_sec * 1e9 + wall.tv_nsec - (double)now;
        for (int i = 0; i < got; i++) take(link, buffers[i], msgs[i].msg_len, now, offset);
        if (got < BATCH) return;
    }
}

/* queue_dropped + user_dropped of each queue, from the link namespace's own view */
static void kernel_drops(const Link *link, long long *drops) {
    for (int i = 0; i < link->nq; i++) drops[i] = -1;
    char path[96];
    snprintf(path, sizeof path, "/proc/%d/net/netfilter/nfnetlink_queue", link->pid);
    FILE *file = fopen(path, "r");
    if (!file) return;
    int number;
    long long peer, total, mode, range, queue_dropped, user_dropped;
    while (fscanf(file, "%d %lld %lld %lld %lld %lld %lld %*[^\n]", &number, &peer, &total,
                  &mode, &range, &queue_dropped, &user_dropped) == 7)
        for (int i = 0; i < link->nq; i++)
            if (link->q[i].number == number) drops[i] = queue_dropped + user_dropped;
    fclose(file);
}

static void log_stats(Link *link) {
    long long drops[MAX_QUEUES];
    kernel_drops(link, drops);
    char body[1024];
    int used = snprintf(body, sizeof body, "\"queues\":{");
    for (int i = 0; i < link->nq; i++) {
        Queue *q = &link->q[i];
        uint64_t count = q->released - q->seen_released;
        char lag_mean[32] = "null", lag_max[32] = "null", kernel[32] = "null";
        if (count) {
            double mean = (q->release_lag_ns - q->seen_lag_ns) / count;
            snprintf(lag_mean, sizeof lag_mean, "%.1f", (mean > 0 ? mean : 0) / 1e3);
            snprintf(lag_max, sizeof lag_max, "%.1f", (q->lag_max_ns > 0 ? q->lag_max_ns : 0) / 1e3);
        }
        if (drops[i] >= 0) snprintf(kernel, sizeof kernel, "%lld", drops[i]);
        used += snprintf(body + used, sizeof body - used,
                         "%s\"%d\":{\"packets\":%llu,\"lost\":%llu,\"released\":%llu,"
                         "\"held\":%zu,\"lag_mean_us\":%s,\"lag_max_us\":%s,"
                         "\"kernel_drops\":%s}",
                         i ? "," : "", q->number,
                         (unsigned long long)(q->packets - q->seen_packets),
                         (unsigned long long)(q->dropped - q->seen_dropped),
                         (unsigned long long)count, q->count, lag_mean, lag_max, kernel);
        q->seen_packets = q->packets;
        q->seen_dropped = q->dropped;
        q->seen_released = q->released;
        q->seen_lag_ns = q->release_lag_ns;
        q->lag_max_ns = 0;
    }
    snprintf(body + used, sizeof body - used, "}");
    event(link->name, "queue_stats", "%s", body);
}

static double cpu_seconds(void) {
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    return usage.ru_utime.tv_sec + usage.ru_utime.tv_usec / 1e6 + usage.ru_stime.tv_sec +
           usage.ru_stime.tv_usec / 1e6;
}

static void shutdown_all(void) {
    uint64_t packets = 0;
    for (int i = 0; i < nlinks; i++) {
        Link *link = &links[i];
        char body[1024];
        int used = snprintf(body, sizeof body, "\"queues\":{");
        for (int k = 0; k < link->nq; k++) {
            Queue *q = &link->q[k];
            if (q->count) {
                uint32_t last = q->ring[(q->head + q->count - 1) % q->cap].id;
                send_verdict(link->fd, q->number, last, 1, NF_ACCEPT);
                q->count = 0;
            }
            packets += q->packets;
            used += snprintf(body + used, sizeof body - used,
                             "%s\"%d\":{\"packets\":%llu,\"dropped\":%llu,\"stamped\":%llu,"
                             "\"receive_lag_us\":%.1f,\"release_lag_us\":%.1f}",
                             k ? "," : "", q->number, (unsigned long long)q->packets,
                             (unsigned long long)q->dropped, (unsigned long long)q->stamped,
                             q->receive_lag_ns / (q->stamped ? q->stamped : 1) / 1e3,
                             q->release_lag_ns / (q->released ? q->released : 1) / 1e3);
        }
        snprintf(body + used, sizeof body - used, "}");
        fcntl(link->fd, F_SETFL, fcntl(link->fd, F_GETFL) & ~O_NONBLOCK);
        struct timeval wait = {.tv_sec = 1};
        setsockopt(link->fd, SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof wait);
        for (int k = 0; k < link->nq; k++) bind_queue(link->fd, link->q[k].number, NFQNL_CFG_CMD_UNBIND);
        close(link->fd);
        event(link->name, "stop", "%s", body);
    }
    event("delayd", "stop", "\"links\":%d,\"packets\":%llu,\"cpu_s\":%.3f,\"wake_advance_us\":%.1f",
          nlinks, (unsigned long long)packets, cpu_seconds(), advance_ns / 1e3);
}

static const char *realtime(void) {
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
    struct sched_param param = {.sched_priority = DELAY_PRIORITY};
    if (sched_setscheduler(0, SCHED_FIFO, &param) == 0) return "fifo:10";
    return "normal";
}

static int serve(const char *config_path) {
    static LinkConfig config[MAX_SERVED];
    char error[256] = "";
    int n = 0;
    if (parse_config(config_path, config, &n, error, sizeof error)) {
        fprintf(stderr, "cdnlab-delayd: cannot start: %s\n", error);
        return 2;
    }
    /* any socket asking for receive timestamps makes the kernel stamp every packet */
    int stamper = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(stamper, SOL_SOCKET, SO_TIMESTAMP, &one, sizeof one);
    int epoll = epoll_create1(EPOLL_CLOEXEC);
    for (int i = 0; i < n; i++) {
        Link *link = &links[nlinks];
        memset(link, 0, sizeof *link);
        memcpy(link->name, config[i].name, sizeof link->name);
        link->pid = config[i].pid;
        link->seed = config[i].seed;
        link->nq = config[i].nq;
        for (int k = 0; k < link->nq; k++) {
            queue_init(&link->q[k], config[i].number[k], link->seed);
            configure_queue(&link->q[k], config[i].delay_ms[k], config[i].jitter_ms[k],
                            config[i].loss_pct[k]);
        }
        if (open_link(link, error, sizeof error)) {
            fprintf(stderr, "cdnlab-delayd: cannot start: %s\n", error);
            return 2;
        }
        nlinks++;
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        epoll_ctl(epoll, EPOLL_CTL_ADD, link->fd, &ev);
        log_config(link);
    }
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGHUP);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    sigprocmask(SIG_BLOCK, &signals, NULL);
    int sigfd = signalfd(-1, &signals, SFD_NONBLOCK | SFD_CLOEXEC);
    struct epoll_event sev = {.events = EPOLLIN, .data.u32 = UINT32_MAX};
    epoll_ctl(epoll, EPOLL_CTL_ADD, sigfd, &sev);

    const char *policy = realtime();
    event("delayd", "ready", "\"links\":%d,\"scheduling\":\"%s\"", nlinks, policy);
    printf("ready\n");
    fflush(stdout);

    struct epoll_event ready[MAX_SERVED + 1];
    int64_t next_stats = mono_ns() + STATS_INTERVAL_NS;
    int stop = 0;
    while (!stop) {
        int64_t now = mono_ns();
        if (now >= next_stats) {
            next_stats += STATS_INTERVAL_NS;
            if (next_stats < now) next_stats = now + STATS_INTERVAL_NS;
            for (int i = 0; i < nlinks; i++) log_stats(&links[i]);
        }
        int64_t next_release = INT64_MAX;
        for (int i = 0; i < nlinks; i++)
            for (int k = 0; k < links[i].nq; k++) {
                Queue *q = &links[i].q[k];
                if (q->count && q->ring[q->head].release < next_release)
                    next_release = q->ring[q->head].release;
            }
        int64_t wake_at = next_release == INT64_MAX ? INT64_MAX
                                                    : next_release - (int64_t)advance_ns;
        int64_t until = wake_at < next_stats ? wake_at : next_stats;
        int64_t wait_ns = until - now;
        if (wait_ns < 0) wait_ns = 0;
        struct timespec timeout = {wait_ns / 1000000000LL, wait_ns % 1000000000LL};
        int got = epoll_pwait2(epoll, ready, MAX_SERVED + 1, &timeout, NULL);
        int readable = 0;
        for (int e = 0; e < got; e++) {
            uint32_t which = ready[e].data.u32;
            if (which == UINT32_MAX) {
                struct signalfd_siginfo info;
                while (read(sigfd, &info, sizeof info) == sizeof info) {
                    if (info.ssi_signo == SIGHUP) reload(config_path);
                    else stop = 1;
                }
                continue;
            }
            drain(&links[which]);
            readable = 1;
        }
        now = mono_ns();
        if (wake_at != INT64_MAX && !readable && now >= wake_at) {
            double lateness = (double)(now - wake_at);
            if (lateness > MAX_ADVANCE_NS) lateness = MAX_ADVANCE_NS;
            advance_ns += LATENESS_GAIN * (lateness - advance_ns);
        }
        int64_t horizon = now + (int64_t)advance_ns;
        for (int i = 0; i < nlinks; i++)
            for (int k = 0; k < links[i].nq; k++) {
                uint32_t last;
                if (queue_due(&links[i].q[k], now, horizon, &last))
                    send_verdict(links[i].fd, links[i].q[k].number, last, 1, NF_ACCEPT);
            }
    }
    shutdown_all();
    close(stamper);
    return 0;
}

/* The queue logic alone, driven by lines on stdin (times in seconds):
 *   queue DELAY_MS JITTER_MS LOSS_PCT SEED   (re)start the queue
 *   admit NOW ARRIVED ID      prints `keep RELEASE` or `drop`
 *   due NOW HORIZON           prints `last ID` or `none`
 * so unit tests check the very code that serves links, without root or sockets. */
static int replay(void) {
    Queue q;
    int have = 0;
    char line[256];
    while (fgets(line, sizeof line, stdin)) {
        double a, b, c;
        unsigned long long seed, id;
        if (sscanf(line, " queue %lf %lf %lf %llu", &a, &b, &c, &seed) == 4) {
            if (!(a >= 0 && b >= 0 && c >= 0 && c < 100)) {
                printf("error impairment out of range\n");
                continue;
            }
            if (have) free(q.ring);
            queue_init(&q, 0, seed);
            configure_queue(&q, a, b, c);
            have = 1;
            printf("ok\n");
        } else if (have && sscanf(line, " admit %lf %lf %llu", &a, &b, &id) == 3) {
            if (queue_admit(&q, (int64_t)llround(a * 1e9), (int64_t)llround(b * 1e9), (uint32_t)id))
                printf("keep %.9f\n", q.ring[(q.head + q.count - 1) % q.cap].release / 1e9);
            else
                printf("drop\n");
        } else if (have && sscanf(line, " due %lf %lf", &a, &b) == 2) {
            uint32_t last;
            if (queue_due(&q, (int64_t)llround(a * 1e9), (int64_t)llround(b * 1e9), &last))
                printf("last %u\n", last);
            else
                printf("none\n");
        } else {
            printf("error %s", line);
        }
    }
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv) {
    const char *config = NULL, *log_path = NULL;
    t0 = wall_s();
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--replay")) return replay();
        if (!strcmp(argv[i], "--config") && i + 1 < argc) config = argv[++i];
        else if (!strcmp(argv[i], "--log") && i + 1 < argc) log_path = argv[++i];
        else if (!strcmp(argv[i], "--t0") && i + 1 < argc) t0 = atof(argv[++i]);
        else {
            fprintf(stderr, "usage: cdnlab-delayd --config FILE --log FILE [--t0 EPOCH] | --replay\n");
            return 2;
        }
    }
    if (!config || !log_path) {
        fprintf(stderr, "cdnlab-delayd: --config and --log are required\n");
        return 2;
    }
    log_file = fopen(log_path, "a");
    if (!log_file) {
        fprintf(stderr, "cdnlab-delayd: cannot start: cannot open %s: %s\n", log_path,
                strerror(errno));
        return 2;
    }
    return serve(config);
}
