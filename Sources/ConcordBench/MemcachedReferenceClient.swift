import ConcordProcess
import Foundation

/// The reference for the Memcached L2 figures: a plain C client that keeps `clients` connections,
/// each with one `mg <key> v` in flight (no pipelining, like redis-benchmark -P 1), driven by one
/// poll(2) loop, and prints requests per second. No memtier-style load tool is packaged for the
/// machine, so this is compiled with the system C compiler when the suite runs.
enum MemcachedReferenceClient {
    static let source = #"""
    #include <arpa/inet.h>
    #include <errno.h>
    #include <netinet/in.h>
    #include <netinet/tcp.h>
    #include <poll.h>
    #include <stdio.h>
    #include <stdlib.h>
    #include <string.h>
    #include <sys/socket.h>
    #include <time.h>
    #include <unistd.h>

    /* usage: ref PORT KEY CLIENTS MAX_REQUESTS MAX_MILLISECONDS -> prints "<requests> <seconds>" */
    static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }

    int main(int argc, char **argv) {
        if (argc != 6) return 2;
        int port = atoi(argv[1]), clients = atoi(argv[3]);
        long max_requests = atol(argv[4]);
        double max_seconds = atol(argv[5]) / 1000.0;
        char request[512];
        int request_length = snprintf(request, sizeof request, "mg %s v\r\n", argv[2]);
        struct pollfd *fds = calloc(clients, sizeof *fds);
        char **buffers = calloc(clients, sizeof *buffers);
        int *filled = calloc(clients, sizeof *filled);
        for (int i = 0; i < clients; i++) {
            int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
            struct sockaddr_in address = {0};
            address.sin_family = AF_INET;
            address.sin_port = htons(port);
            address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            if (fd < 0 || connect(fd, (struct sockaddr *)&address, sizeof address) != 0) { perror("connect"); return 1; }
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            fds[i].fd = fd;
            fds[i].events = POLLIN;
            buffers[i] = malloc(65536);
            if (write(fd, request, request_length) != request_length) { perror("write"); return 1; }
        }
        long done = 0, sent = clients;
        double start = now(), deadline = start + max_seconds;
        while (done < max_requests) {
            if (poll(fds, clients, 1000) < 0) { if (errno == EINTR) continue; perror("poll"); return 1; }
            for (int i = 0; i < clients; i++) {
                if (!(fds[i].revents & POLLIN)) continue;
                ssize_t n = read(fds[i].fd, buffers[i] + filled[i], 65536 - filled[i]);
                if (n <= 0) { fprintf(stderr, "connection closed\n"); return 1; }
                filled[i] += n;
                /* A whole response: "VA <size> ...\r\n" + size bytes + "\r\n", or a one-line "EN\r\n". */
                char *end = memchr(buffers[i], '\n', filled[i]);
                if (!end) continue;
                int header = (int)(end - buffers[i]) + 1, total = header;
                if (strncmp(buffers[i], "VA ", 3) == 0) total += atoi(buffers[i] + 3) + 2;
                else if (strncmp(buffers[i], "EN", 2) == 0) { fprintf(stderr, "key missing\n"); return 1; }
                if (filled[i] < total) continue;
                memmove(buffers[i], buffers[i] + total, filled[i] - total);
                filled[i] -= total;
                done++;
                if (sent < max_requests && now() < deadline) {
                    if (write(fds[i].fd, request, request_length) != request_length) { perror("write"); return 1; }
                    sent++;
                } else if (done >= sent) {
                    max_requests = done;
                }
            }
        }
        printf("%ld %.6f\n", done, now() - start);
        return 0;
    }
    """#

    /// Compiles the client into `directory` with `cc -O2`; returns the executable's path.
    static func build(in directory: URL) async throws -> String {
        guard let compiler = ExecutableSearch.locate("cc") ?? ExecutableSearch.locate("gcc") ?? ExecutableSearch.locate("clang") else {
            throw BenchError("no C compiler (cc) to build the memcached reference client")
        }
        let sourceFile = directory.appendingPathComponent("mg-reference.c")
        let executable = directory.appendingPathComponent("mg-reference").path
        try source.write(to: sourceFile, atomically: true, encoding: .utf8)
        let output = try await HelperProgram.run(compiler, ["-O2", "-o", executable, sourceFile.path], timeout: .seconds(60))
        guard output.status == 0 else {
            throw BenchError("building the memcached reference client failed: \(output.standardError.prefix(400))")
        }
        return executable
    }

    /// Requests per second of the reference client.
    static func rate(executable: String, port: Int, key: String, clients: Int, maxRequests: Int, maxDuration: Duration) async throws -> Double {
        let milliseconds = max(1, Int(maxDuration.components.seconds * 1000 + maxDuration.components.attoseconds / 1_000_000_000_000_000))
        let output = try await HelperProgram.run(
            executable, [String(port), key, String(clients), String(maxRequests), String(milliseconds)],
            timeout: maxDuration * 5 + .seconds(10))
        let fields = output.standardOutput.split(whereSeparator: { $0 == " " || $0.isNewline })
        guard output.status == 0, fields.count == 2, let count = Double(fields[0]), let seconds = Double(fields[1]), seconds > 0 else {
            throw BenchError("the memcached reference client failed (status \(output.status)): \(output.standardError.prefix(300))")
        }
        return count / seconds
    }
}
