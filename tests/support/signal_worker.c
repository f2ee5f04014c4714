/* An unmodified program for the transparent-mode tests of signal delivery: plain system calls, no
 * libfdbroker. It catches SIGALRM with a handler installed without SA_RESTART (unless told
 * otherwise), so a call the signal interrupts returns EINTR instead of being restarted, and makes
 * tens of thousands of file-system calls that the kernel never interrupts natively (a regular file's
 * open, stat, access, readlink, mkdir, rmdir, unlink, rename, symlink), checking every result.
 *
 *   signal_worker MODE DIR ITERATIONS [restart]
 *     MODE timer    one thread makes the calls; setitimer(ITIMER_REAL) fires SIGALRM at 1 kHz
 *          threads  two threads make the calls (each in its own directory) and share the timer's
 *                   signals, which the kernel gives to whichever thread can take them
 *          tgkill   one thread makes the calls; another sends SIGALRM to it alone every millisecond
 *                   (tgkill), the way the Go runtime preempts a goroutine
 *     restart       install the handler with SA_RESTART instead: an interrupted call is restarted
 *   prints "calls=C eintr=E wrong=W signals=S": E calls failed with EINTR (each is then retried,
 *   as a careful program would), W calls gave any other unexpected result, such as a retried mkdir
 *   that fails with EEXIST because the interrupted one had been performed after all. The first few
 *   wrong results are described on stderr. Natively E and W are 0.
 *
 *   signal_worker forward BATCHES
 *     blocks the signals fdbroker forwards (SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2,
 *     SIGWINCH), prints "ready", then BATCHES times waits for one of them, takes every other one
 *     already pending with it, and prints them on one line, each with who sent it: "INT kernel" (a
 *     terminal, SI_KERNEL) or "INT user" (kill(2), pidfd_send_signal). A signal delivered twice before
 *     the next one shows on the same line or as a line of its own. Exits 0.
 *   signal_worker connect PORT [restart]
 *     catches SIGINT (with SA_RESTART if told), prints "connecting", then makes a blocking TCP connect
 *     to 127.0.0.1:PORT and prints how it ended: "connect 0" or "connect ERRNONAME". The handler
 *     prints "handled" when it runs.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static const char kContent[] = "signals\n";

static atomic_long calls, eintrs, wrongs, signals_seen;
static atomic_int stop_signaller;

static void on_alarm(int sig) {
    (void)sig;
    atomic_fetch_add_explicit(&signals_seen, 1, memory_order_relaxed);
}

static void wrong(const char* what, const char* path, const char* why) {
    if (atomic_fetch_add(&wrongs, 1) < 5) fprintf(stderr, "%s %s: %s\n", what, path, why);
}

/* One call: -1/EINTR is counted and the call is made again, the way a program that expects EINTR
 * would; any other failure is counted as wrong (what a successful call returned is checked by its
 * caller). A macro, to keep each call's own return type (int, ssize_t). */
#define CHECKED(rc, call, what, path)                     \
    do {                                                  \
        for (;;) {                                        \
            atomic_fetch_add(&calls, 1);                  \
            (rc) = (call);                                \
            if ((rc) >= 0 || errno != EINTR) break;       \
            atomic_fetch_add(&eintrs, 1);                 \
        }                                                 \
        if ((rc) < 0) wrong(what, path, strerror(errno)); \
    } while (0)

struct names {
    char file[4096], link[4096], dir[4096], fresh[4096], moved[4096], symlink[4096];
};

static void make_names(struct names* n, const char* base) {
    snprintf(n->file, sizeof n->file, "%s/file", base);
    snprintf(n->link, sizeof n->link, "%s/link", base);
    snprintf(n->dir, sizeof n->dir, "%s/dir", base);
    snprintf(n->fresh, sizeof n->fresh, "%s/fresh", base);
    snprintf(n->moved, sizeof n->moved, "%s/moved", base);
    snprintf(n->symlink, sizeof n->symlink, "%s/symlink", base);
}

/* The calls that read: each must succeed and describe the file the set-up made. */
static void reading_calls(const struct names* n) {
    int fd;
    CHECKED(fd, open(n->file, O_RDONLY | O_CLOEXEC), "open", n->file);
    if (fd >= 0) close(fd);
    struct stat st;
    int rc;
    CHECKED(rc, stat(n->file, &st), "stat", n->file);
    if (rc == 0 && (!S_ISREG(st.st_mode) || st.st_size != (off_t)strlen(kContent)))
        wrong("stat", n->file, "not the file the set-up made");
    CHECKED(rc, access(n->file, R_OK), "access", n->file);
    char target[64];
    ssize_t len;
    CHECKED(len, readlink(n->link, target, sizeof target), "readlink", n->link);
    if (len >= 0 && (len != 4 || memcmp(target, "file", 4) != 0))
        wrong("readlink", n->link, "not the target the set-up made");
}

/* The calls that change the directory, in pairs that undo each other: a call performed twice, or
 * not at all, makes its pair fail. */
static void changing_calls(const struct names* n) {
    int rc;
    CHECKED(rc, mkdir(n->dir, 0700), "mkdir", n->dir);
    CHECKED(rc, rmdir(n->dir), "rmdir", n->dir);
    int fd;
    CHECKED(fd, open(n->fresh, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600), "open O_EXCL", n->fresh);
    if (fd >= 0) close(fd);
    CHECKED(rc, rename(n->fresh, n->moved), "rename", n->fresh);
    CHECKED(rc, unlink(n->moved), "unlink", n->moved);
    CHECKED(rc, symlink("file", n->symlink), "symlink", n->symlink);
    CHECKED(rc, unlink(n->symlink), "unlink", n->symlink);
    /* After a wrong result, start the next round clean (these calls are not counted). */
    rmdir(n->dir);
    unlink(n->fresh);
    unlink(n->moved);
    unlink(n->symlink);
}

struct job {
    char base[4096];
    long iterations;
};

static void* run_job(void* arg) {
    const struct job* job = arg;
    struct names n;
    make_names(&n, job->base);
    for (long i = 0; i < job->iterations; ++i) {
        reading_calls(&n);
        changing_calls(&n);
    }
    return NULL;
}

/* Each job's directory holds a regular file and a symlink to it; made before any signal arrives. */
static int prepare(struct job* job, const char* dir, int index, long iterations) {
    snprintf(job->base, sizeof job->base, "%s/t%d", dir, index);
    job->iterations = iterations;
    struct names n;
    make_names(&n, job->base);
    if (mkdir(job->base, 0700) != 0 && errno != EEXIST) return -1;
    int fd = open(n.file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return -1;
    ssize_t w = write(fd, kContent, strlen(kContent));
    close(fd);
    if (w != (ssize_t)strlen(kContent)) return -1;
    unlink(n.link);
    return symlink("file", n.link);
}

struct target {
    pid_t tid;
};

static void* signaller(void* arg) {
    const struct target* t = arg;
    const struct timespec ms = {0, 1000000};
    while (!atomic_load(&stop_signaller)) {
        syscall(SYS_tgkill, getpid(), t->tid, SIGALRM);
        clock_nanosleep(CLOCK_MONOTONIC, 0, &ms, NULL);
    }
    return NULL;
}

static void set_timer(long usec) {
    struct itimerval every = {{0, usec}, {0, usec}};
    setitimer(ITIMER_REAL, &every, NULL);
}

static const struct {
    int sig;
    const char* name;
} kForwarded[] = {{SIGHUP, "HUP"},   {SIGINT, "INT"},   {SIGQUIT, "QUIT"},  {SIGUSR1, "USR1"},
                  {SIGUSR2, "USR2"}, {SIGTERM, "TERM"}, {SIGWINCH, "WINCH"}};

static void describe(char* line, size_t size, const siginfo_t* info) {
    const char* name = "?";
    for (size_t i = 0; i < sizeof kForwarded / sizeof kForwarded[0]; ++i)
        if (kForwarded[i].sig == info->si_signo) name = kForwarded[i].name;
    const size_t used = strlen(line);
    snprintf(line + used, size - used, "%s%s %s", used ? ", " : "", name,
             info->si_code == SI_KERNEL ? "kernel" : "user");
}

static int forward(long batches) {
    sigset_t set;
    sigemptyset(&set);
    for (size_t i = 0; i < sizeof kForwarded / sizeof kForwarded[0]; ++i)
        sigaddset(&set, kForwarded[i].sig);
    sigprocmask(SIG_BLOCK, &set, NULL);
    printf("ready\n");
    fflush(stdout);
    const struct timespec now = {0, 0};
    for (long b = 0; b < batches; ++b) {
        char line[512] = "";
        siginfo_t info;
        if (sigwaitinfo(&set, &info) < 0) continue;
        describe(line, sizeof line, &info);
        while (sigtimedwait(&set, &info, &now) > 0)
            describe(line, sizeof line, &info);
        printf("%s\n", line);
        fflush(stdout);
    }
    return 0;
}

static void on_interrupt(int sig) {
    (void)sig;
    static const char text[] = "handled\n";
    ssize_t w = write(STDOUT_FILENO, text, sizeof text - 1);
    (void)w;
}

static int connect_once(int port, int restart) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_interrupt;
    sa.sa_flags = restart ? SA_RESTART : 0;
    sigaction(SIGINT, &sa, NULL);
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        printf("socket %s\n", strerrorname_np(errno));
        return 1;
    }
    struct sockaddr_in peer;
    memset(&peer, 0, sizeof peer);
    peer.sin_family = AF_INET;
    peer.sin_port = htons((unsigned short)port);
    peer.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    printf("connecting\n");
    fflush(stdout);
    const int rc = connect(fd, (const struct sockaddr*)&peer, sizeof peer);
    printf("connect %s\n", rc == 0 ? "0" : strerrorname_np(errno));
    return 0;
}

int main(int argc, char** argv) {
    if (argc == 3 && strcmp(argv[1], "forward") == 0) return forward(atol(argv[2]));
    if ((argc == 3 || (argc == 4 && strcmp(argv[3], "restart") == 0)) && strcmp(argv[1], "connect") == 0)
        return connect_once(atoi(argv[2]), argc == 4);
    const int known = argc > 1 && (strcmp(argv[1], "timer") == 0 || strcmp(argv[1], "threads") == 0 ||
                                   strcmp(argv[1], "tgkill") == 0);
    if (!known || (argc != 4 && !(argc == 5 && strcmp(argv[4], "restart") == 0))) {
        fprintf(stderr,
                "usage: signal_worker timer|threads|tgkill DIR ITERATIONS [restart]\n"
                "       signal_worker forward BATCHES\n"
                "       signal_worker connect PORT [restart]\n");
        return 2;
    }
    const char* mode = argv[1];
    const long iterations = atol(argv[3]);
    const int threads = strcmp(mode, "threads") == 0 ? 2 : 1;
    struct job jobs[2];
    for (int i = 0; i < threads; ++i) {
        if (prepare(&jobs[i], argv[2], i, iterations) != 0) {
            fprintf(stderr, "set-up in %s: %s\n", argv[2], strerror(errno));
            return 1;
        }
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    /* Without SA_RESTART an interrupted call returns EINTR; with it, the kernel restarts the call. */
    sa.sa_flags = argc == 5 ? SA_RESTART : 0;
    sigaction(SIGALRM, &sa, NULL);

    pthread_t worker[2], sender;
    struct target main_thread = {(pid_t)syscall(SYS_gettid)};
    if (strcmp(mode, "tgkill") == 0) {
        if (pthread_create(&sender, NULL, signaller, &main_thread) != 0) return 1;
        run_job(&jobs[0]);
        atomic_store(&stop_signaller, 1);
        pthread_join(sender, NULL);
    } else {
        set_timer(1000);
        for (int i = 1; i < threads; ++i)
            if (pthread_create(&worker[i], NULL, run_job, &jobs[i]) != 0) return 1;
        run_job(&jobs[0]);
        for (int i = 1; i < threads; ++i)
            pthread_join(worker[i], NULL);
        set_timer(0);
    }
    printf("calls=%ld eintr=%ld wrong=%ld signals=%ld\n", atomic_load(&calls), atomic_load(&eintrs),
           atomic_load(&wrongs), atomic_load(&signals_seen));
    return 0;
}
