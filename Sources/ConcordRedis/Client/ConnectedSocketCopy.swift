#if canImport(Glibc)
import Glibc
#endif
import NIOCore

/// A second descriptor of a connected TCP socket that SwiftNIO owns, so that a caller off the
/// event loop can write a command to it without waking the loop (`RedisCommandQueue`).
///
/// SwiftNIO does not hand out a channel's descriptor, so the process's descriptors are searched
/// (`/proc/self/fd`) for the one whose local and peer addresses are the channel's, which TCP makes
/// unique, and that one is duplicated. The copy refers to the same socket: writes through it go out
/// in order with the channel's, and it keeps the socket open until it is closed itself, so its
/// owner must close it when the channel closes.
enum ConnectedSocketCopy {
    /// At most this many descriptors are examined; a process with more gets no copy (and its
    /// commands go through the event loop as before), so a connect never scans without bound.
    static let maxDescriptorsExamined = 4_096

    /// Duplicates the descriptor of the TCP socket connected from `local` to `remote`; nil when
    /// none is found (another platform, an address family other than IP, too many descriptors).
    /// Call it on the channel's event loop, so the channel cannot close while it looks.
    static func duplicate(local: SocketAddress?, remote: SocketAddress?) -> Int32? {
        #if os(Linux)
        guard let local, let remote, let localKey = AddressKey(local), let remoteKey = AddressKey(remote) else { return nil }
        guard let directory = opendir("/proc/self/fd") else { return nil }
        defer { closedir(directory) }
        let ownDescriptor = dirfd(directory)
        var examined = 0
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
            guard let descriptor = Int32(name), descriptor != ownDescriptor else { continue }
            examined += 1
            if examined > maxDescriptorsExamined { return nil }
            guard AddressKey(descriptor: descriptor, peer: false) == localKey,
                  AddressKey(descriptor: descriptor, peer: true) == remoteKey
            else { continue }
            var type: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            guard getsockopt(descriptor, SOL_SOCKET, SO_TYPE, &type, &length) == 0, type == Int32(SOCK_STREAM.rawValue) else { continue }
            let copy = fcntl(descriptor, F_DUPFD_CLOEXEC, 0)
            return copy >= 0 ? copy : nil
        }
        return nil
        #else
        return nil
        #endif
    }

    /// An IP address and port, as bytes, to compare a socket's with the channel's.
    private struct AddressKey: Equatable {
        var family: Int32
        var port: UInt16
        var address: [UInt8]

        init?(_ address: SocketAddress) {
            switch address {
            case .v4(let v4):
                var raw = v4.address
                family = AF_INET
                port = raw.sin_port
                self.address = withUnsafeBytes(of: &raw.sin_addr) { Array($0) }
            case .v6(let v6):
                var raw = v6.address
                family = AF_INET6
                port = raw.sin6_port
                self.address = withUnsafeBytes(of: &raw.sin6_addr) { Array($0) }
            default:
                return nil
            }
        }

        /// The socket's own address, or its peer's.
        init?(descriptor: Int32, peer: Bool) {
            var storage = sockaddr_storage()
            var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let status = withUnsafeMutablePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    peer ? getpeername(descriptor, $0, &length) : getsockname(descriptor, $0, &length)
                }
            }
            guard status == 0 else { return nil }
            switch Int32(storage.ss_family) {
            case AF_INET:
                var raw = withUnsafeBytes(of: storage) { $0.loadUnaligned(as: sockaddr_in.self) }
                family = AF_INET
                port = raw.sin_port
                address = withUnsafeBytes(of: &raw.sin_addr) { Array($0) }
            case AF_INET6:
                var raw = withUnsafeBytes(of: storage) { $0.loadUnaligned(as: sockaddr_in6.self) }
                family = AF_INET6
                port = raw.sin6_port
                address = withUnsafeBytes(of: &raw.sin6_addr) { Array($0) }
            default:
                return nil
            }
        }
    }
}
