/*
 * unixlab.c - Unix domain addresses, stale socket files, and cleanup at exit.
 *
 * Reference solution for chapter 04.
 */
#include "common.h"
#include "unixlab.h"

#include <signal.h>
#include <sys/stat.h>

int is_abstract(const char *name)
{
    return name[0] == '@' && name[1] != '\0';
}

socklen_t unix_address(struct sockaddr_un *sa, const char *name)
{
    size_t len = strlen(name);

    memset(sa, 0, sizeof(*sa));
    sa->sun_family = AF_UNIX;
    if (len == 0)
        fatal(0, "empty socket name");
    if (len >= sizeof(sa->sun_path))
        fatal(0, "name too long: '%s' (at most %zu bytes)", name, sizeof(sa->sun_path) - 1);

    if (is_abstract(name)) {
        /* sun_path[0] stays NUL; the name is the bytes after it, and the length
         * (not a terminating NUL) says where it ends. */
        memcpy(sa->sun_path + 1, name + 1, len - 1);
        return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
    }
    memcpy(sa->sun_path, name, len);            /* NUL already there from memset */
    return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + 1);
}

void remove_stale_socket(const char *name)
{
    struct stat st;

    if (is_abstract(name))
        return;
    if (lstat(name, &st) < 0) {
        if (errno == ENOENT)
            return;
        fatal(errno, "lstat '%s'", name);
    }
    if (!S_ISSOCK(st.st_mode))
        fatal(0, "refusing to remove '%s': not a socket", name);
    if (unlink(name) < 0 && errno != ENOENT)
        fatal(errno, "unlink '%s'", name);
}

/* The path to remove at exit ("" = nothing).  Written before the handlers exist. */
static char cleanup_path[sizeof(((struct sockaddr_un *)NULL)->sun_path)];

static void remove_path(void)
{
    if (cleanup_path[0] != '\0')
        unlink(cleanup_path);
}

/* unlink and _exit are async-signal-safe: doing the whole job here is allowed, and
 * it works whatever call (accept, read, recvfrom...) the program is blocked in. */
static void on_stop_signal(int sig)
{
    (void)sig;
    remove_path();
    _exit(0);
}

void remove_on_exit(const char *name)
{
    if (!is_abstract(name)) {
        snprintf(cleanup_path, sizeof(cleanup_path), "%s", name);
        if (atexit(remove_path) != 0)
            fatal(0, "atexit failed");
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGINT, &sa, NULL) < 0)
        fatal(errno, "sigaction SIGINT");
    if (sigaction(SIGTERM, &sa, NULL) < 0)
        fatal(errno, "sigaction SIGTERM");
}
