import Concord

/// The Lua scripts of the coherence protocol. Each runs atomically in Redis; they check
/// everything that could fail before they write, because Redis does not roll back a script
/// that errors half-way.
enum CoherenceScripts {
    /// Applies a versioned mutation and, when asked, announces it: compare versions and keep
    /// the newer; store the entry, tombstone or marker; INCR the sequence; XADD the message to
    /// the log with id `0-<seq>`; PUBLISH it. No write lands without its notification.
    ///
    /// KEYS: 1 target (entry, tag marker or clear marker), 2 seq, 3 log, 4 epoch.
    /// ARGV: 1 kind, 2 version (ordered text), 3 envelope, 4 ttl ms, 5 store (1/0),
    ///       6 publish (1/0), 7 message body, 8 log max length, 9 candidate epoch, 10 channel.
    /// Returns `{1, seq}` when applied (seq 0 when not published) or `{0, newerVersion}`.
    static let write = RedisScript(#"""
    local kind = tonumber(ARGV[1])
    local ver = ARGV[2]
    local ttl = tonumber(ARGV[4])
    local target = KEYS[1]
    local store = ARGV[5] == '1'
    if store and (kind == 1 or kind == 2 or kind == 3) then
      local current = redis.call('HGET', target, 'v')
      if current and current >= ver then return {0, current} end
    end
    local seq = 0
    local message = nil
    if ARGV[6] == '1' then
      local epoch = redis.call('GET', KEYS[4])
      if not epoch then
        epoch = ARGV[9]
        redis.call('SET', KEYS[4], epoch, 'NX')
      end
      seq = redis.call('INCR', KEYS[2])
      local n = seq
      local bytes = {}
      for i = 8, 1, -1 do
        bytes[i] = string.char(n % 256)
        n = math.floor(n / 256)
      end
      message = 'CNCB' .. string.char(1) .. string.char(#epoch) .. epoch .. table.concat(bytes) .. ARGV[7]
      redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[8], '0-' .. seq, 'm', message)
    end
    if store then
      if kind == 1 then
        redis.call('DEL', target)
        redis.call('HSET', target, 'v', ver, 'd', ARGV[3])
        redis.call('PEXPIRE', target, ttl)
      elseif kind == 2 then
        redis.call('DEL', target)
        redis.call('HSET', target, 'v', ver)
        redis.call('PEXPIRE', target, ttl)
      elseif kind == 3 then
        if redis.call('EXISTS', target) == 1 then
          local expired = redis.call('HGET', target, 'x')
          if (not expired) or expired < ver then redis.call('HSET', target, 'x', ver) end
        end
      elseif kind == 4 then
        local current = redis.call('GET', target)
        if (not current) or current < ver then redis.call('SET', target, ver, 'PX', ttl) end
      elseif kind == 5 or kind == 6 then
        local field = 'x'
        if kind == 5 then field = 'r' end
        local current = redis.call('HGET', target, field)
        if (not current) or current < ver then
          redis.call('HSET', target, field, ver)
          redis.call('PEXPIRE', target, ttl)
        end
      end
    end
    if message then redis.call('PUBLISH', ARGV[10], message) end
    return {1, seq}
    """#)

    /// Reads an entry with its markers in one step.
    /// KEYS: 1 entry, 2 clear marker. Returns nil, or `{version, envelope, expire, clearRemove, clearExpire}`.
    static let read = RedisScript(#"""
    local e = redis.call('HMGET', KEYS[1], 'v', 'd', 'x')
    if (not e[1]) or (not e[2]) then return false end
    local c = redis.call('HMGET', KEYS[2], 'r', 'x')
    return {e[1], e[2], e[3] or '', c[1] or '', c[2] or ''}
    """#)

    /// The epoch (created with SET NX when missing) and the last sequence.
    /// KEYS: 1 epoch, 2 seq. ARGV: 1 candidate epoch. Returns `{epoch, seq}`.
    static let head = RedisScript(#"""
    local epoch = redis.call('GET', KEYS[1])
    if not epoch then
      redis.call('SET', KEYS[1], ARGV[1], 'NX')
      epoch = redis.call('GET', KEYS[1])
    end
    local seq = tonumber(redis.call('GET', KEYS[2]) or '0')
    return {epoch, seq}
    """#)

    /// A random epoch id, proposed to the scripts; Redis keeps the first one set.
    static func candidateEpoch() -> String {
        var generator = SystemRandomNumberGenerator()
        let high = UInt64.random(in: .min ... .max, using: &generator)
        let hex = String(high, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }
}
