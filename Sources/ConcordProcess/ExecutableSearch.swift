import Foundation

/// Finds a program by name the way a shell does, so `posix_spawn` (which takes a path) can run it.
package enum ExecutableSearch {
    /// The path of `name` in `PATH` (then /usr/bin and /usr/local/bin), or nil. A name with a
    /// `/` is returned as it is.
    package static func locate(_ name: String) -> String? {
        if name.contains("/") { return name }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for directory in path.split(separator: ":") + ["/usr/bin", "/usr/local/bin"] {
            let candidate = "\(directory)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }
}
