/* A tiny HTTP/1.0 server for the cluster smoke test, linked statically so that it runs
 * in a `FROM scratch` image:
 *   smoke-httpd PORT [FILE]
 *   GET /              -> "hello from <hostname>\n"
 *   GET /file          -> the current contents of FILE (e.g. a mounted ConfigMap key)
 *   GET /probe/NAME/PORT/PATH
 *                      -> resolves NAME with the pod's resolver (cluster DNS), fetches
 *                         http://NAME:PORT/PATH and returns "<address> <body>"
 */
#include <arpa/inet.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static const char *file_path;

static void reply(int fd, int status, const char *body, size_t len) {
    char head[256];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.0 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n",
                     status, status == 200 ? "OK" : "Error", len);
    if (write(fd, head, n) < 0 || write(fd, body, len) < 0) return;
}

static void probe(int fd, char *spec) {
    char *name = strtok(spec, "/"), *port = strtok(NULL, "/"), *path = strtok(NULL, "");
    char out[4096], addr[64] = "?";
    if (!name || !port) { reply(fd, 400, "usage: /probe/NAME/PORT/PATH\n", 29); return; }
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *res;
    int rc = getaddrinfo(name, port, &hints, &res);
    if (rc != 0) {
        int n = snprintf(out, sizeof out, "resolve %s: %s\n", name, gai_strerror(rc));
        reply(fd, 502, out, n);
        return;
    }
    inet_ntop(AF_INET, &((struct sockaddr_in *)res->ai_addr)->sin_addr, addr, sizeof addr);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(s, res->ai_addr, res->ai_addrlen) != 0) {
        int n = snprintf(out, sizeof out, "connect %s (%s): failed\n", name, addr);
        reply(fd, 502, out, n);
        close(s);
        freeaddrinfo(res);
        return;
    }
    freeaddrinfo(res);
    char req[512];
    int n = snprintf(req, sizeof req, "GET /%s HTTP/1.0\r\nHost: %s\r\n\r\n", path ? path : "", name);
    if (write(s, req, n) < 0) { close(s); return; }
    char buf[4096];
    size_t got = 0;
    ssize_t r;
    while (got < sizeof buf - 1 && (r = read(s, buf + got, sizeof buf - 1 - got)) > 0) got += r;
    close(s);
    buf[got] = 0;
    char *body = strstr(buf, "\r\n\r\n");
    n = snprintf(out, sizeof out, "%s %s", addr, body ? body + 4 : buf);
    reply(fd, 200, out, n);
}

static void serve(int fd) {
    char req[2048];
    ssize_t n = read(fd, req, sizeof req - 1);
    if (n <= 0) return;
    req[n] = 0;
    char *path = strchr(req, ' ');
    if (!path) return;
    path++;
    char *end = strchr(path, ' ');
    if (end) *end = 0;
    if (strcmp(path, "/") == 0) {
        char host[256] = "", body[300];
        gethostname(host, sizeof host - 1);
        int m = snprintf(body, sizeof body, "hello from %s\n", host);
        reply(fd, 200, body, m);
    } else if (strcmp(path, "/file") == 0 && file_path) {
        char body[4096];
        FILE *f = fopen(file_path, "r");
        if (!f) { reply(fd, 404, "no file\n", 8); return; }
        size_t m = fread(body, 1, sizeof body, f);
        fclose(f);
        reply(fd, 200, body, m);
    } else if (strncmp(path, "/probe/", 7) == 0) {
        probe(fd, path + 7);
    } else {
        reply(fd, 404, "not found\n", 10);
    }
}

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: %s PORT [FILE]\n", argv[0]); return 2; }
    file_path = argc > 2 ? argv[2] : NULL;
    signal(SIGPIPE, SIG_IGN);
    signal(SIGCHLD, SIG_IGN); /* no zombies from the per-request children */
    int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[1]))};
    if (bind(s, (struct sockaddr *)&a, sizeof a) != 0 || listen(s, 16) != 0) { perror("bind"); return 1; }
    fprintf(stderr, "listening on %s\n", argv[1]);
    for (;;) {
        int c = accept(s, NULL, NULL);
        if (c < 0) continue;
        if (fork() == 0) { close(s); serve(c); close(c); _exit(0); }
        close(c);
    }
}
