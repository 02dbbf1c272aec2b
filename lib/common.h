/*
 * common.h - the small toolbox every socklab program includes.
 *
 * Each helper does one job, checks every system call, and reports failures the
 * same way: "<what failed>: <strerror> (<errno>)" on stderr.  Programs that link
 * lib/ also get line-buffered stdout automatically (see program_init below), so a
 * grader reading through a pipe sees each line the moment it is printed.
 *
 * Conventions
 *   - Functions that return ssize_t/int return -1 and set errno on failure.
 *   - Functions whose name ends in _or_die never return on failure: they print the
 *     failing call's name with strerror and exit(1) through fatal().
 *   - Nothing here ignores SIGPIPE for you: deciding what a write to a closed peer
 *     does is part of the lessons (see chapter 06).
 */
#ifndef SOCKLAB_COMMON_H
#define SOCKLAB_COMMON_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>
#include <unistd.h>

/* ------------------------------------------------------------------------ */
/* Reporting errors                                                          */
/* ------------------------------------------------------------------------ */

/*
 * fatal - print a message to stderr and exit(1).
 * If errnum is non-zero, ": <strerror(errnum)> (<errnum>)" is appended, e.g.
 *     fatal(errno, "connect");   ->   "connect: Connection refused (111)"
 *     fatal(0, "usage: %s PORT", argv[0]);
 * stdout is flushed first so no printed line is lost.
 */
void fatal(int errnum, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 2, 3)));

/* warning - the same message format as fatal(), but returns (errno is preserved). */
void warning(int errnum, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * TODO - marks an unfinished part of a skeleton.  It prints
 *     "TODO not done: <what> (<file>:<line>)" to stderr and exits with status 3,
 * which the graders recognise and report as "stopped at an unfinished TODO".
 * Delete the call once you have written the code it describes.
 */
#define TODO_EXIT_STATUS 3
#define TODO(what) todo_reached(__FILE__, __LINE__, (what))
void todo_reached(const char *file, int line, const char *what) __attribute__((noreturn));

/*
 * program_init - called automatically before main() (a constructor in lib/).
 * Makes stdout line-buffered even when it is a pipe.  Safe to call again.
 */
void program_init(void);

/* ------------------------------------------------------------------------ */
/* Exact-count I/O                                                          */
/* ------------------------------------------------------------------------ */

/*
 * readn - read exactly n bytes unless EOF comes first.
 * Retries on EINTR and on short reads.  Returns n, or fewer (possibly 0) if the
 * peer closed the connection first, or -1 on error.  (A non-blocking fd with no
 * data yields -1/EAGAIN only if nothing at all was read; otherwise the partial
 * count is returned.)
 */
ssize_t readn(int fd, void *buf, size_t n);

/*
 * writen - write all n bytes.  Retries on EINTR and short writes.
 * Returns n, or -1 on error (e.g. EPIPE; SIGPIPE is whatever the program chose).
 */
ssize_t writen(int fd, const void *buf, size_t n);

/* ------------------------------------------------------------------------ */
/* Length-prefixed frames: [uint32 length, network byte order][payload]     */
/* ------------------------------------------------------------------------ */

#define FRAME_HEADER_SIZE 4
/* read_frame's return value when the peer closed cleanly between two frames. */
#define FRAME_EOF (-2)

/*
 * write_frame - send one frame (header and payload in one writev, completed if
 * short; EINTR is retried).  payload may be NULL when len is 0.
 * Returns 0, or -1 on error.
 */
int write_frame(int fd, const void *payload, uint32_t len);

/*
 * read_frame - receive one frame into buf (capacity cap).  Blocks until the whole
 * frame is there (use it on blocking fds; EINTR is retried).  Returns the payload
 * length (0 is a valid empty frame), or
 *   FRAME_EOF  the peer closed before the first header byte (a clean end);
 *   -1         error, errno set:
 *                EMSGSIZE  the announced length exceeds cap; nothing of the
 *                          payload was read, so the stream is out of step and the
 *                          caller should close the connection;
 *                EPROTO    the peer closed in the middle of a frame (truncated);
 *                other     from read(); EAGAIN on a non-blocking fd that ran
 *                          dry mid-frame (the stream is then out of step too).
 * buf is not NUL-terminated (frames carry bytes, not strings).
 */
ssize_t read_frame(int fd, void *buf, size_t cap);

/* ------------------------------------------------------------------------ */
/* Lines: LF or CRLF terminated, buffered per connection                     */
/* ------------------------------------------------------------------------ */

#define LINE_READER_BUFSIZE 8192

/*
 * One line_reader per connection.  It keeps bytes that arrived after the end of
 * the current line, so lines that arrive together ("a\nb\n" in one segment) are
 * all returned, one per call.  Never share a reader between two fds, and never
 * mix read_line with plain read() on the same fd (the reader may hold bytes).
 */
struct line_reader {
    int fd;
    size_t start;                    /* first unconsumed byte in buf */
    size_t end;                      /* one past the last valid byte */
    int eof;                         /* read() returned 0 */
    int discarding;                  /* skipping the rest of an overlong line */
    char buf[LINE_READER_BUFSIZE];
};

void line_reader_init(struct line_reader *lr, int fd);

/*
 * read_line - copy the next line into line (capacity cap, >= 2), NUL-terminated.
 * A line ends at '\n'; a "\r\n" pair counts as one terminator, and either is stored
 * as a single '\n'.  A '\r' not followed by '\n' is ordinary data (kept).  A last
 * line without a terminator before EOF is returned as it is, without '\n'.
 * EINTR is retried.
 * Returns the number of bytes stored (including the '\n', excluding the NUL), or
 *   0    EOF: the peer closed and no bytes are left;
 *   -1   error, errno set:
 *          EMSGSIZE  the line is too long: its content (without terminator) has
 *                    more than cap - 2 bytes, or more than LINE_READER_BUFSIZE - 2
 *                    (cap 8: "123456\n" fits exactly, "1234567\n" does not).
 *                    (The same limit applies to a last line cut by EOF, so the
 *                    verdict does not depend on how the peer ended it.)  Nothing
 *                    is written to line.  That whole line is dropped: the call
 *                    returns as soon as the line is known to be too long, and the
 *                    next call first skips the rest of it, through its '\n'
 *                    (reading more if needed), then returns the line after it.
 *                    So the caller may give up on the connection or call again;
 *          EAGAIN    (non-blocking fd) no complete line yet; the partial line is
 *                    kept and completed by a later call (also while the rest of
 *                    an overlong line is still being skipped);
 *          EINVAL    cap < 2;
 *          other     from read().
 */
ssize_t read_line(struct line_reader *lr, char *line, size_t cap);

/*
 * How many bytes the reader holds that read_line has not returned yet (e.g. to
 * check that a client sent nothing after a command it should have waited on).
 */
size_t line_reader_pending(const struct line_reader *lr);

/* ------------------------------------------------------------------------ */
/* Sockets                                                                  */
/* ------------------------------------------------------------------------ */

/*
 * parse_port_or_die - "8080" -> 8080.  Accepts 0..65535 (0 = let the kernel
 * choose); anything else exits with "invalid port '<text>'".
 */
uint16_t parse_port_or_die(const char *text);

/*
 * tcp_listen_or_die - socket + SO_REUSEADDR + bind + listen on host:port.
 * host is an IPv4/IPv6 literal, or NULL for the IPv4 wildcard 0.0.0.0.
 * On failure exits naming the call, e.g. "bind: Address already in use (98)";
 * a host that is not a literal exits with "invalid address '<host>'".
 */
int tcp_listen_or_die(const char *host, uint16_t port, int backlog);

/*
 * tcp_connect_or_die - connect a TCP socket to host:port (IPv4 or IPv6 literal).
 * On failure exits naming the call, e.g. "connect: Connection refused (111)";
 * a host that is not a literal exits with "invalid address '<host>'".
 * (A connect interrupted by a signal is waited for, not reported as EINTR.)
 */
int tcp_connect_or_die(const char *host, uint16_t port);

/*
 * fill_sockaddr - parse an IPv4 or IPv6 literal and port into *ss.
 * Returns the address length to pass to bind/connect, or -1 with errno EINVAL if
 * host is NULL or not an address literal (e.g. "300.1.1.1", "localhost").
 * (int rather than socklen_t so that "< 0" works: socklen_t is unsigned.)
 */
int fill_sockaddr(struct sockaddr_storage *ss, const char *host, uint16_t port);

/* make_nonblocking - set O_NONBLOCK on fd.  Returns 0, or -1 on error. */
int make_nonblocking(int fd);

/*
 * local_port / peer_port - the port of a socket's own or peer address in host byte
 * order (through getsockname/getpeername).  Return -1 on error (EAFNOSUPPORT for a
 * socket that is neither IPv4 nor IPv6).
 */
int local_port(int fd);
int peer_port(int fd);

/* Big enough for "[ffff:...:ffff]:65535" and for "unix:" + a full sun_path. */
#define ADDR_STRLEN 128

/*
 * format_addr - render an address of len bytes (as getsockname/accept/recvfrom
 * report it) for humans into buf of size bytes (ADDR_STRLEN is enough):
 *   "127.0.0.1:8080", "[::1]:8080", "[fe80::1%2]:8080" (scope = interface index),
 *   "unix:/tmp/s", "unix:@abstract", "unix:(unnamed)", "family 17" (any other).
 * Never reads past len bytes; truncates to fit; always NUL-terminates (if size > 0);
 * returns buf.
 */
char *format_addr(const struct sockaddr *sa, socklen_t len, char *buf, size_t size);

#endif /* SOCKLAB_COMMON_H */
