import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The one way Concord starts a child process: `posix_spawn`, not Foundation's `Process`, for
/// two guarantees a supervisor needs. Every signal starts at its default disposition and
/// unblocked (a harness that ignores SIGINT/SIGTERM to shut down in order, or a test runner that
/// blocks them, would otherwise hand that on, and its children would shrug off SIGTERM), and no
/// descriptor of the parent (proxy sockets, the origin, another child's pipes) leaks into the child.
package enum ProcessSpawn {
    /// Where a spawned child's stdout and stderr go.
    package enum Output: Sendable {
        /// Both to /dev/null.
        case discard
        /// Both appended to the file at this path (created when missing).
        case file(String)
        /// Each to a pipe the parent reads (`Child.standardOutput` and `.standardError`).
        case pipes
    }

    /// A started child: its pid and, for `.pipes`, the read ends of its output.
    package struct Child: Sendable {
        package let processIdentifier: pid_t
        package let standardOutput: FileHandle?
        package let standardError: FileHandle?
    }

    /// Starts `executable` (a path; `ExecutableSearch` finds one by name) with stdin from /dev/null.
    package static func start(
        executable: String,
        arguments: [String],
        environment: [String: String]? = nil,
        output: Output = .discard
    ) throws -> Child {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)

        // Pipes are made close-on-exec, so no child started by other means inherits them (the
        // closefrom action below covers children started here); dup2 clears that flag on the
        // copies this child gets as 1 and 2.
        var outputPipe: [Int32] = [-1, -1]
        var errorPipe: [Int32] = [-1, -1]
        func closePipes() {
            for fd in outputPipe + errorPipe where fd >= 0 { close(fd) }
        }
        switch output {
        case .discard:
            posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
            posix_spawn_file_actions_adddup2(&actions, 1, 2)
        case .file(let path):
            posix_spawn_file_actions_addopen(&actions, 1, path, O_WRONLY | O_CREAT | O_APPEND, 0o644)
            posix_spawn_file_actions_adddup2(&actions, 1, 2)
        case .pipes:
            guard pipe(&outputPipe) == 0, pipe(&errorPipe) == 0 else {
                let reason = String(cString: strerror(errno))
                closePipes()
                throw ProcessLaunchError("cannot make pipes for \(executable): \(reason)")
            }
            for fd in outputPipe + errorPipe { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
            posix_spawn_file_actions_adddup2(&actions, outputPipe[1], 1)
            posix_spawn_file_actions_adddup2(&actions, errorPipe[1], 2)
        }
        closeInheritedDescriptors(&actions)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t()
        sigemptyset(&none)
        var all = sigset_t()
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let environment = environment ?? ProcessInfo.processInfo.environment
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for pointer in argv { free(pointer) }
            for pointer in envp { free(pointer) }
        }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
        guard result == 0 else {
            closePipes()
            throw ProcessLaunchError("posix_spawn \(executable) failed: \(String(cString: strerror(result)))")
        }
        guard case .pipes = output else {
            return Child(processIdentifier: pid, standardOutput: nil, standardError: nil)
        }
        // The child holds its own copies of the write ends; the parent keeps only the read ends,
        // so each reaches end of file when the child (and anything it started) exits.
        close(outputPipe[1])
        close(errorPipe[1])
        return Child(
            processIdentifier: pid,
            standardOutput: FileHandle(fileDescriptor: outputPipe[0], closeOnDealloc: true),
            standardError: FileHandle(fileDescriptor: errorPipe[0], closeOnDealloc: true)
        )
    }

    /// Closes every descriptor from 3 up in the child: with glibc's closefrom action where it
    /// exists (looked up at run time; Swift's Glibc module does not export it), else one close
    /// action per descriptor open now.
    private static func closeInheritedDescriptors(_ actions: inout posix_spawn_file_actions_t) {
        typealias CloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
        if let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np") {
            let closeFrom = unsafeBitCast(symbol, to: CloseFrom.self)
            if closeFrom(&actions, 3) == 0 { return }
        }
        let open = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        for fd in open.compactMap({ Int32($0) }) where fd > 2 && fcntl(fd, F_GETFD) >= 0 && fcntl(fd, F_GETFD) & FD_CLOEXEC == 0 {
            posix_spawn_file_actions_addclose(&actions, fd)
        }
    }

    /// Blocks until `pid` exits and returns its exit status, or the signal that ended it (as
    /// Foundation reports them); -1 if it cannot be waited for.
    package static func waitForExit(_ pid: pid_t) -> Int32 {
        var status: Int32 = 0
        while true {
            let result = waitpid(pid, &status, 0)
            if result == pid { break }
            if result == -1 && errno == EINTR { continue }
            return -1
        }
        let signal = status & 0x7f
        return signal == 0 ? (status >> 8) & 0xff : signal
    }

    /// Starts a thread of its own that blocks in `waitpid` for `pid` and then calls `exited`:
    /// reaping must not occupy the cooperative pool, and an exit must be seen even while the
    /// caller is busy. Until it has been reaped, the pid is SIGKILLed if this process exits.
    package static func reap(_ pid: pid_t, name: String, exited: @escaping @Sendable (Int32) -> Void) {
        ExitRegistry.shared.add(pid)
        let reaper = Thread {
            let status = waitForExit(pid)
            // Forgotten once reaped, so a reused pid is never killed at exit.
            ExitRegistry.shared.remove(pid)
            exited(status)
        }
        reaper.name = "concord-reaper-\(name)"
        reaper.start()
    }
}
