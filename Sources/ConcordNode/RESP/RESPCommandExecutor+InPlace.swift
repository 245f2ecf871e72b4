import Concord

/// The reads the front end answers from the request's bytes where they lie in the read buffer.
extension RESPCommandExecutor {
    /// GET, MGET and EXISTS run in place: no argument is copied out of the read buffer and no
    /// key `String` is built for what L1 answers, which is what a pipelined batch of hits is
    /// made of. The reply is what `execute` writes for the same command, L1 reads and counts
    /// the keys as it does for `execute`, and a key L1 cannot answer goes on to L2 as there.
    ///
    /// Nil, having read and written nothing, for everything else: any other command, a wrong
    /// number of arguments, a connection not allowed to read, or a key `HybridCache.readsKeyBytes`
    /// does not take (not ASCII, empty, too long). `execute` then runs the command and gives
    /// whatever reply or typed error it always gives.
    func executeInPlace(_ arguments: RESPArguments, state: RESPConnectionState, into writer: inout RESPReplyWriter) -> Outcome? {
        guard arguments.count >= 2, mayRead(state) else { return nil }
        let command: InPlaceCommand
        if arguments.isName(0, "GET") {
            guard arguments.count == 2 else { return nil }
            command = .get
        } else if arguments.isName(0, "MGET") {
            command = .mget
        } else if arguments.isName(0, "EXISTS") {
            command = .exists
        } else {
            return nil
        }
        for index in 1..<arguments.count where !cache.readsKeyBytes(arguments[index]) { return nil }
        do {
            switch command {
            case .get: return try getInPlace(arguments[1], into: &writer)
            case .mget: return try mgetInPlace(arguments, into: &writer)
            case .exists: return try existsInPlace(arguments, into: &writer)
            }
        } catch let error as RESPCommandError {
            writer.error(error.reply)
        } catch {
            writer.error("ERR \(error)")
        }
        return .replied
    }

    private enum InPlaceCommand {
        case get, mget, exists
    }

    /// What `execute` checks before a read, as one test that passes: no AUTH owed, and the
    /// read scope granted or not protected.
    private func mayRead(_ state: RESPConnectionState) -> Bool {
        if requiresAuthentication, state.scopes.isEmpty { return false }
        return protectedScopes.isDisjoint(with: .read) || state.scopes.isSuperset(of: .read)
    }

    /// A hit's bytes go from the cache's storage into the reply (`writeMemoryHit`), without a
    /// reference to the value taken and dropped per GET.
    private func getInPlace(_ key: UnsafeRawBufferPointer, into writer: inout RESPReplyWriter) throws -> Outcome {
        guard let pending = try cache.writeMemoryHit(utf8: key, { writer.bulk(bytes: $0) }) else { return .replied }
        return Self.finishGet(String(decoding: key, as: UTF8.self), continuing: pending, in: cache)
    }

    /// Values of the keys (arguments 1...), from L1 where fresh; the rest to await.
    private func lookUpInPlace(_ arguments: RESPArguments) throws -> (values: [[UInt8]?], pending: [PendingKey]) {
        var values: [[UInt8]?] = []
        values.reserveCapacity(arguments.count - 1)
        var pending: [PendingKey] = []
        for index in 1..<arguments.count {
            switch try cache.tryGetFromMemory(utf8: arguments[index]) {
            case .hit(let result): values.append(result.value)
            case .pending(let read):
                pending.append(PendingKey(index: values.count, key: String(decoding: arguments[index], as: UTF8.self), read: read))
                values.append(nil)
            }
        }
        return (values, pending)
    }

    private func mgetInPlace(_ arguments: RESPArguments, into writer: inout RESPReplyWriter) throws -> Outcome {
        let (found, pending) = try lookUpInPlace(arguments)
        return Self.finishMGet(found, pending: pending, in: cache, into: &writer)
    }

    private func existsInPlace(_ arguments: RESPArguments, into writer: inout RESPReplyWriter) throws -> Outcome {
        let (values, pending) = try lookUpInPlace(arguments)
        return Self.finishExists(found: values.count { $0 != nil }, pending: pending, in: cache, into: &writer)
    }
}
