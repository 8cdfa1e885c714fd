/*
 * A WebSocket load client for bench_gateway.py: many connections on one epoll loop, so the clients
 * cost microseconds per frame and the figures measure the gateway, not the harness.
 *
 * Usage: ws_load HOST PORT PATH CLIENTS HOT
 * Opens CLIENTS connections to ws://HOST:PORT/PATH; the first HOT subscribe to bench.gw_hot, the
 * rest to bench.gw_cold. Prints "ready" once every subscription is answered. Then reads commands
 * on standard input:
 *   start   counts from now
 *   report  waits until no frame has arrived for 0.5 s, then prints one line and starts again:
 *           db_change frames received, seconds from start to the last one, and for the hot
 *           clients' frames the p50 and p99 of (arrival - data.sent_at) in ms, over every frame
 *           and over each change's first arrival
 *   quit    exits
 * data.sent_at is the writer's CLOCK_MONOTONIC reading (Python's time.perf_counter()).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct connection {
    int fd;
    int hot;
    size_t used;
    size_t capacity;
    unsigned char *buffer;
};

struct sample {
    double sent_at;
    double latency;
};

static struct sample *samples;
static size_t sample_count, sample_capacity;
static long frames_received;
static double started_at, last_frame_at;
static int subscribed, closed_by_server;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void fail(const char *what) {
    fprintf(stderr, "ws_load: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void write_all(int fd, const void *data, size_t length) {
    const char *cursor = data;
    while (length > 0) {
        ssize_t written = write(fd, cursor, length);
        if (written < 0) {
            if (errno == EINTR || errno == EAGAIN) continue;
            fail("write");
        }
        cursor += written;
        length -= (size_t)written;
    }
}

/* Clients mask what they send (RFC 6455 5.3); a zero mask is a valid mask. */
static void send_frame(int fd, int opcode, const char *payload, size_t length) {
    unsigned char header[8] = {(unsigned char)(0x80 | opcode)};
    size_t header_length;
    if (length < 126) {
        header[1] = (unsigned char)(0x80 | length);
        header_length = 2;
    } else {
        header[1] = 0x80 | 126;
        header[2] = (unsigned char)(length >> 8);
        header[3] = (unsigned char)length;
        header_length = 4;
    }
    memset(header + header_length, 0, 4);
    write_all(fd, header, header_length + 4);
    write_all(fd, payload, length);
}

/* The text after `"key":` (and any spaces), for a key of the outermost object, or NULL. */
static const char *value_of(const char *json, size_t length, const char *key) {
    size_t key_length = strlen(key);
    int depth = 0, in_string = 0;
    for (size_t i = 0; i < length; i++) {
        char c = json[i];
        if (in_string) {
            if (c == '\\') i++;
            else if (c == '"') in_string = 0;
            continue;
        }
        if (c == '{' || c == '[') depth++;
        else if (c == '}' || c == ']') depth--;
        else if (c == '"') {
            if (depth == 1 && length - i >= key_length && memcmp(json + i, key, key_length) == 0) {
                const char *value = json + i + key_length;
                while (value < json + length && (*value == ' ' || *value == ':')) value++;
                if (value > json + i + key_length) return value;
            }
            in_string = 1;
        }
    }
    return NULL;
}

static void on_text(struct connection *connection, const char *json, size_t length, double arrived) {
    const char *type = value_of(json, length, "\"type\"");
    if (!type) return;
    if (strncmp(type, "\"subscribed\"", 12) == 0) {
        subscribed++;
    } else if (strncmp(type, "\"db_change\"", 11) == 0) {
        frames_received++;
        last_frame_at = arrived;
        const char *data = value_of(json, length, "\"data\"");
        const char *sent_at = data ? value_of(data, (size_t)(json + length - data), "\"sent_at\"") : NULL;
        if (connection->hot && sent_at) {
            if (sample_count == sample_capacity) {
                sample_capacity = sample_capacity ? 2 * sample_capacity : 65536;
                samples = realloc(samples, sample_capacity * sizeof *samples);
            }
            double sent = strtod(sent_at, NULL);
            samples[sample_count++] = (struct sample){sent, arrived - sent};
        }
    } else if (strncmp(type, "\"error\"", 7) == 0) {
        fprintf(stderr, "ws_load: the gateway answered with an error: %.*s\n", (int)length, json);
        exit(1);
    }
}

/* Handles every whole frame in the buffer; returns 0 once the server closed the connection. */
static int on_readable(struct connection *connection) {
    for (;;) {
        if (connection->capacity - connection->used < 65536) {
            connection->capacity *= 2;
            connection->buffer = realloc(connection->buffer, connection->capacity);
        }
        ssize_t got = read(connection->fd, connection->buffer + connection->used, connection->capacity - connection->used);
        if (got == 0) return 0;
        if (got < 0) {
            if (errno == EAGAIN) break;
            if (errno == EINTR) continue;
            return 0;
        }
        connection->used += (size_t)got;
    }
    double arrived = now();
    size_t at = 0;
    while (connection->used - at >= 2) {
        unsigned char *frame = connection->buffer + at;
        int opcode = frame[0] & 0x0f;
        uint64_t length = frame[1] & 0x7f;
        size_t header = 2;
        if (length == 126) {
            if (connection->used - at < 4) break;
            length = ((uint64_t)frame[2] << 8) | frame[3];
            header = 4;
        } else if (length == 127) {
            if (connection->used - at < 10) break;
            length = 0;
            for (int i = 0; i < 8; i++) length = (length << 8) | frame[2 + i];
            header = 10;
        }
        if (connection->used - at < header + length) break;
        if (!(frame[0] & 0x80)) {
            fprintf(stderr, "ws_load: a fragmented frame; the gateway sends whole messages\n");
            exit(1);
        }
        const char *payload = (const char *)frame + header;
        if (opcode == 1) on_text(connection, payload, (size_t)length, arrived);
        else if (opcode == 9) send_frame(connection->fd, 10, payload, (size_t)length);
        else if (opcode == 8) {
            if (closed_by_server++ == 0)
                fprintf(stderr, "ws_load: the server closed a connection: %d %.*s\n", length >= 2 ? (frame[header] << 8) | frame[header + 1] : 0,
                        length > 2 ? (int)length - 2 : 0, payload + 2);
            return 0;
        }
        at += header + (size_t)length;
    }
    memmove(connection->buffer, connection->buffer + at, connection->used - at);
    connection->used -= at;
    return 1;
}

static int open_connection(const char *host, int port, const char *path) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) fail("socket");
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, host, &address.sin_addr);
    if (connect(fd, (struct sockaddr *)&address, sizeof address) < 0) fail("connect");
    int on = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    char request[4096];
    int length = snprintf(request, sizeof request,
                          "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                          "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
                          path, host, port);
    write_all(fd, request, (size_t)length);
    /* Read the response byte by byte, so no frame after it is consumed here. */
    char response[4096];
    size_t used = 0;
    while (used < sizeof response - 1 && (used < 4 || memcmp(response + used - 4, "\r\n\r\n", 4) != 0)) {
        ssize_t got = read(fd, response + used, 1);
        if (got <= 0) fail("reading the upgrade response");
        used += (size_t)got;
    }
    response[used] = 0;
    if (strncmp(response, "HTTP/1.1 101", 12) != 0) {
        fprintf(stderr, "ws_load: the upgrade was refused: %s\n", response);
        exit(1);
    }
    return fd;
}

static int by_latency(const void *left, const void *right) {
    double a = ((const struct sample *)left)->latency, b = ((const struct sample *)right)->latency;
    return (a > b) - (a < b);
}

static int by_sent_then_latency(const void *left, const void *right) {
    const struct sample *a = left, *b = right;
    if (a->sent_at != b->sent_at) return (a->sent_at > b->sent_at) - (a->sent_at < b->sent_at);
    return by_latency(left, right);
}

static double percentile_ms(struct sample *values, size_t count, double fraction) {
    if (count == 0) return 0;
    size_t index = (size_t)(fraction * (double)count);
    return 1000 * values[index < count ? index : count - 1].latency;
}

static void report(void) {
    qsort(samples, sample_count, sizeof *samples, by_sent_then_latency);
    size_t changes = 0;
    struct sample *first = malloc((sample_count + 1) * sizeof *first);
    for (size_t i = 0; i < sample_count; i++)
        if (i == 0 || samples[i].sent_at != samples[i - 1].sent_at) first[changes++] = samples[i];
    qsort(first, changes, sizeof *first, by_latency);
    qsort(samples, sample_count, sizeof *samples, by_latency);
    printf("%ld %.3f %zu %.2f %.2f %.2f %.2f %d\n", frames_received, frames_received ? last_frame_at - started_at : 0.0, sample_count,
           percentile_ms(samples, sample_count, 0.5), percentile_ms(samples, sample_count, 0.99), percentile_ms(first, changes, 0.5),
           percentile_ms(first, changes, 0.99), closed_by_server);
    fflush(stdout);
    free(first);
    sample_count = 0;
    frames_received = 0;
    started_at = now();
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: ws_load HOST PORT PATH CLIENTS HOT\n");
        return 2;
    }
    const char *host = argv[1], *path = argv[3];
    int port = atoi(argv[2]), clients = atoi(argv[4]), hot = atoi(argv[5]);
    int poller = epoll_create1(0);
    struct connection *connections = calloc((size_t)clients, sizeof *connections);
    for (int i = 0; i < clients; i++) {
        struct connection *connection = &connections[i];
        connection->fd = open_connection(host, port, path);
        connection->hot = i < hot;
        connection->capacity = 131072;
        connection->buffer = malloc(connection->capacity);
        char subscribe[256];
        int length = snprintf(subscribe, sizeof subscribe, "{\"type\":\"subscribe\",\"table\":\"%s\",\"client_id\":\"bench-%d-%d\"}",
                              connection->hot ? "bench.gw_hot" : "bench.gw_cold", (int)getpid(), i);
        send_frame(connection->fd, 1, subscribe, (size_t)length);
        if (fcntl(connection->fd, F_SETFL, O_NONBLOCK) < 0) fail("fcntl");
        struct epoll_event event = {.events = EPOLLIN, .data.ptr = connection};
        if (epoll_ctl(poller, EPOLL_CTL_ADD, connection->fd, &event) < 0) fail("epoll_ctl");
    }
    struct epoll_event input = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(poller, EPOLL_CTL_ADD, STDIN_FILENO, &input);
    int announced = 0, reporting = 0, open = clients;
    started_at = now();
    struct epoll_event events[256];
    for (;;) {
        if (!announced && subscribed == clients) {
            printf("ready\n");
            fflush(stdout);
            announced = 1;
            sample_count = 0;
            frames_received = 0;
        }
        int ready = epoll_wait(poller, events, 256, reporting ? 50 : 1000);
        if (ready < 0 && errno != EINTR) fail("epoll_wait");
        for (int i = 0; i < ready; i++) {
            struct connection *connection = events[i].data.ptr;
            if (connection == NULL) {
                char command[64];
                if (!fgets(command, sizeof command, stdin)) return 0;
                if (strncmp(command, "start", 5) == 0) {
                    sample_count = 0;
                    frames_received = 0;
                    started_at = now();
                } else if (strncmp(command, "report", 6) == 0) {
                    reporting = 1;
                } else if (strncmp(command, "quit", 4) == 0) {
                    return 0;
                }
            } else if (!on_readable(connection)) {
                epoll_ctl(poller, EPOLL_CTL_DEL, connection->fd, NULL);
                close(connection->fd);
                if (--open == 0 && !announced) {
                    fprintf(stderr, "ws_load: every connection closed before subscribing\n");
                    return 1;
                }
            }
        }
        if (reporting && now() - (last_frame_at > started_at ? last_frame_at : started_at) > 0.5) {
            reporting = 0;
            report();
        }
    }
}
