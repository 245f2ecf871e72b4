import Concord

/// The Lua scripts of the coherence protocol. Each runs atomically in Redis; they check
/// everything that could fail before they write, because Redis does not roll back a script
/// that errors half-way.
enum CoherenceScripts {
    /// Applies a versioned mutation and, when asked, announces it: compare versions and keep
    /// the newer; store the entry, tombstone or marker; advance the head's sequence; XADD the
    /// message to the log with id `0-<seq>`; PUBLISH (or SPUBLISH) it. No write lands without its notification.
    ///
    /// The head is one hash `{epoch, seq}`. When it is missing (evicted, or Redis lost its data)
    /// or the log reaches past its sequence (the head went back while the log did not), the
    /// history is unknown: the script starts a new epoch and a new log, so every node expires its
    /// L1 instead of the write script failing on `XADD` for ever.
    ///
    /// The first write is always one Redis refuses when it is full (HSET, SET), never one it
    /// allows (DEL, HDEL): under `noeviction` at `maxmemory` the whole script is then refused
    /// with `OOM`, instead of a DEL letting the rest through past the limit.
    ///
    /// A stored version above ARGV 11 (the writer's wall clock plus the allowed drift) was forged
    /// or corrupted; it never wins the comparison, so it cannot block writes to its key.
    ///
    /// An `expire` outlives the writes it is newer than: it is stored as a marker-only hash
    /// `{x}` when the entry is missing, a remove older than the marker keeps it, and a set older
    /// than the marker is superseded by it, as by a newer entry. A write queued during an outage
    /// and flushed after a newer invalidation must not make its older value fresh again: not in
    /// L2, and not in its writer's L1, which a node that skipped the invalidation's message (an
    /// epoch change, a rollback) keeps fresh while the write is queued.
    ///
    /// A clear is two fields of the head, `r` (remove) and `x` (expire), not a key of its own:
    /// Redis can then lose it only with the epoch. Every entry and tombstone records the epoch it
    /// was written in (`e`); one from another epoch may have been hidden by a clear (or a tag
    /// removal) that Redis has since lost, so the read script reports it and it reads as expired.
    ///
    /// A set older than a clear or a removal of one of its tags (ARGV 14…, its head fields) is
    /// superseded by it, like a set older than the stored entry: stored, it would only be
    /// hidden when read, and its writer (a queued write flushed after the clear) would keep it
    /// fresh in its own L1.
    ///
    /// A tag removal is a field of the head too (`t:<tag>`), for the same reason: as a key with a
    /// TTL of its own, eviction could drop it while the entries it hides stayed. A sorted set
    /// (the target) holds when each such field may go, by Redis's own clock (a writer's clock may
    /// run ahead); every tag removal drops up to 16 fields whose time has come.
    ///
    /// The head keeps the highest version of a set stored (`hv`, a forged one above ARGV 11 is
    /// replaced). A live clear or tag removal (ARGV 14 `1`) older than it is superseded by it
    /// and changes nothing: by Redis's order it comes after that set, so its writer rebases it
    /// after that version rather than let a set made before it escape it because the set's
    /// writer's clock ran ahead (or its own was set back by a restart).
    ///
    /// KEYS: 1 target (entry, the tag-removal expiry set, or the head for a clear), 2 head, 3 log.
    /// ARGV: 1 kind, 2 version (ordered text), 3 envelope, 4 ttl ms (plain decimal digits, as the
    ///       node writes an integer: a set hands them to PEXPIRE as they came), 5 store (1/0),
    ///       6 publish (1/0), 7 message body, 8 log max length, 9 candidate epoch, 10 channel,
    ///       11 highest believable version (ordered text), 12 publish command: PUBLISH, or SPUBLISH
    ///       in a cluster, where the channel is in the cache's slot and only its shard hears it,
    ///       13 the tag removal's head field (`t:<tag>`; empty for other kinds),
    ///       14… for a set, the head fields of its entry's tags; for a clear or tag removal,
    ///       `1` when it is live (`CacheMutation.ordersAfterStoredSets`).
    /// Returns `{1, seq}` when applied (seq 0 when not published) or `{0, newerVersion}`.
    static let write = RedisScript(writeFunction + "\n" + #"""
    return run(KEYS[2], function()
      local applied, detail = write(KEYS[1], KEYS[2], KEYS[3], tonumber(ARGV[1]), ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6],
                                    ARGV[7], ARGV[8], ARGV[9], ARGV[10], ARGV[11], ARGV[12], ARGV[13], 14, #ARGV)
      return {applied, detail}
    end)
    """#)

    /// Applies a batch of mutations in order, each exactly as `write` applies it alone (the same
    /// function runs once per mutation), so a batch is the same as its scripts run back to back:
    /// one version comparison, one log entry and one message per mutation. Besides one `EVALSHA`
    /// per mutation, it saves the head's reads after the first mutation that needs them and
    /// writes the head once (the function carries its fields, see `writeFunction`): a batched
    /// set calls 5 Redis commands instead of 11, which took Redis's CPU per batched set from
    /// 18–21 to 12–15 µs, see docs/benchmarks.md. Every key is in the cache's slot, so a batch
    /// is legal in a cluster too.
    ///
    /// An error (OOM on the first write, a key of the wrong type) ends the whole script, and
    /// Redis keeps what the mutations before it wrote and published; the caller fails every
    /// mutation of the batch, as a lost reply would fail a single write.
    ///
    /// KEYS: 1 head, 2 log, then each mutation's target.
    /// ARGV: 1 mutation count, 2 log max length, 3 candidate epoch, 4 channel, 5 publish command,
    ///       then per mutation: kind, version, envelope, ttl ms, store, publish, message body,
    ///       highest believable version, tag removal field (ARGV 1-7, 11 and 13 of `write`), the
    ///       number n of its tag fields, and those n fields (ARGV 14… of `write`).
    /// Returns each mutation's `write` reply, flattened: `{applied1, x1, applied2, x2, ...}`.
    static let writeBatch = RedisScript(writeFunction + "\n" + #"""
    local digits = {['0'] = 0, ['1'] = 1, ['2'] = 2, ['3'] = 3, ['4'] = 4, ['5'] = 5, ['6'] = 6, ['7'] = 7, ['8'] = 8, ['9'] = 9}
    return run(KEYS[1], function()
      local results = {}
      local b = 6
      for i = 1, tonumber(ARGV[1]) do
        local tags = digits[ARGV[b + 9]] or tonumber(ARGV[b + 9])
        local applied, detail = write(KEYS[2 + i], KEYS[1], KEYS[2], digits[ARGV[b]] or tonumber(ARGV[b]), ARGV[b + 1], ARGV[b + 2], ARGV[b + 3],
                                      ARGV[b + 4], ARGV[b + 5], ARGV[b + 6], ARGV[2], ARGV[3], ARGV[4], ARGV[b + 7],
                                      ARGV[5], ARGV[b + 8], b + 10, b + 9 + tags)
        results[2 * i - 1] = applied
        results[2 * i] = detail
        b = b + 10 + tags
      end
      return results
    end)
    """#)

    /// The body of `write` as a Lua function of (target, head, log, the mutation's fields), shared by `write` and
    /// `writeBatch` so the two cannot drift apart.
    ///
    /// The function carries the head's fields from one mutation of a call to the next, so a
    /// batch reads each at most once and writes the head once, at the end (`run`):
    /// - `knownEpoch` and `knownSeq`: once a mutation has read them (and checked them against
    ///   the log) or advanced them, they are what the head would hold had each mutation written
    ///   it, and the log's newest entry is `0-seq` (or the log is empty). Nothing else in a script
    ///   writes those two fields or the log, and a script runs atomically, so a later mutation
    ///   reading them again would find the same and pass the log check.
    /// - `knownHighest` (`hv`): only a set raises it, and it is known from then on.
    /// - A set that reads the head's markers while the epoch and sequence are not yet known
    ///   reads all five fields in one `HMGET` (`headRead`), which the sequence step then uses
    ///   instead of a second read: nothing writes the head between the two, so a lone set calls
    ///   8 Redis commands instead of 9.
    /// - A published mutation (other than a tag removal) that read the head checks the log by
    ///   adding its entry first, before it stores anything: `XADD 0-<seq+1>` succeeds exactly
    ///   when the log reaches no further than the head's sequence, which is what `XREVRANGE`
    ///   would have checked (`logPastHead`). Refused, the log is read: past the head, the
    ///   mutation starts a new epoch as before; not past it (a wrong type, OOM, a stream whose
    ///   last id is beyond its newest entry), the mutation goes on and fails on its `XADD` at
    ///   the end, as it did. So a lone set calls 7 Redis commands instead of 9, and data and
    ///   replies stay those of the earlier script (`scripts/write-script.py diff`). A tag
    ///   removal keeps the read: its `ZSCORE` of a key the script has not checked could fail
    ///   after the entry was added.
    /// - `knownRemove` and `knownExpire` (the clears, `r` and `x`): a clear or tag removal may
    ///   write head fields, so after one they are read again.
    /// `run` writes what changed (`flushHead`) after the last mutation, and also when one failed
    /// (a key of the wrong type): the head then holds what it would have held had each earlier
    /// mutation written it, exactly as before, and the error is answered with its own code
    /// (`WRONGTYPE`, `OOM`, `READONLY`). A failure inside a mutation leaves the fields as the
    /// mutations before it left them: they change only after its last fallible step that comes
    /// before the head write it replaces (an `XADD` refused after it still advances the head, as
    /// the head write before the `XADD` did).
    ///
    /// The message prefix (magic, format, epoch) is kept per epoch, and the sequence is written
    /// big-endian in one `string.char` call.
    ///
    /// Per mutation, the Lua work around the commands is kept small (session 28: Redis CPU per
    /// batched set 13.2–16.4 → 10.6–14.3 µs, see docs/benchmarks.md): the fields come as
    /// arguments of `write`, not in a table built per mutation; it answers two values, not a
    /// table; the batch reads kinds and tag counts through a table of digits rather than
    /// `tonumber`; a set's ttl goes to PEXPIRE as the text it came as (a Lua number is formatted
    /// with `%.17g` on its way to a command), and the log id is formatted with `%d` (joining a
    /// number to a string formats it with `%.14g`; both agree below 1e14).
    private static let writeFunction = #"""
    local knownEpoch, knownSeq, prefix, prefixEpoch = nil, 0, nil, nil
    local headDirty, pendingHighest = false, nil
    local highestKnown, knownHighest = false, false
    local clearsKnown, knownRemove, knownExpire = false, false, false
    local function flushHead(headKey)
      if headDirty and pendingHighest then
        redis.call('HSET', headKey, 'epoch', knownEpoch, 'seq', knownSeq, 'hv', pendingHighest)
      elseif headDirty then
        redis.call('HSET', headKey, 'epoch', knownEpoch, 'seq', knownSeq)
      elseif pendingHighest then
        redis.call('HSET', headKey, 'hv', pendingHighest)
      end
    end
    local function run(headKey, body)
      local ok, result = pcall(body)
      flushHead(headKey)
      if not ok then return redis.error_reply(result) end
      return result
    end
    local function bigEndian8(n)
      local b8 = n % 256; n = (n - b8) / 256
      local b7 = n % 256; n = (n - b7) / 256
      local b6 = n % 256; n = (n - b6) / 256
      local b5 = n % 256; n = (n - b5) / 256
      local b4 = n % 256; n = (n - b4) / 256
      local b3 = n % 256; n = (n - b3) / 256
      local b2 = n % 256; n = (n - b2) / 256
      return string.char(n % 256, b2, b3, b4, b5, b6, b7, b8)
    end
    local function logPastHead(logKey, seq)
      local top = redis.call('XREVRANGE', logKey, '+', '-', 'COUNT', 1)[1]
      if not top then return false end
      local ms, n = string.match(top[1], '^(%d+)-(%d+)$')
      return ms ~= '0' or tonumber(n) > seq
    end
    local function logID(seq)
      if seq < 1e14 then return string.format('0-%d', seq) end
      return '0-' .. seq
    end
    local function messageOf(epoch, seq, body)
      if prefixEpoch ~= epoch then
        prefix = 'CNCB' .. string.char(2) .. string.char(#epoch) .. epoch
        prefixEpoch = epoch
      end
      return prefix .. bigEndian8(seq) .. body
    end
    local function write(target, headKey, logKey, kind, ver, envelope, ttlText, storeFlag, publishFlag, body,
                         logMax, candidateEpoch, channel, believable, publishCommand, removalField, tagFrom, tagTo)
      local store = storeFlag == '1'
      local publish = publishFlag == '1'
      local highest = false
      local raisedHighest = nil
      local expired = false
      local headRead = nil
      local checkByAdding, logged = false, false
      if store and (kind == 1 or kind == 2 or kind == 3) then
        local entry = redis.call('HMGET', target, 'v', 'x')
        local current = entry[1]
        expired = entry[2]
        if current and current >= ver and current <= believable then return 0, current end
        if kind == 1 then
          if expired and expired >= ver and expired <= believable then return 0, expired end
          if not (clearsKnown and highestKnown) then
            local markers
            if knownEpoch then
              markers = redis.call('HMGET', headKey, 'hv', 'r', 'x')
            else
              markers = redis.call('HMGET', headKey, 'hv', 'r', 'x', 'epoch', 'seq')
              headRead = {markers[4], markers[5]}
            end
            if not highestKnown then
              knownHighest = markers[1]
              highestKnown = true
            end
            knownRemove, knownExpire = markers[2], markers[3]
            clearsKnown = true
          end
          highest = knownHighest
          if knownRemove and knownRemove >= ver and knownRemove <= believable then return 0, knownRemove end
          if knownExpire and knownExpire >= ver and knownExpire <= believable then return 0, knownExpire end
          for i = tagFrom, tagTo do
            local marker = redis.call('HGET', headKey, ARGV[i])
            if marker and marker >= ver and marker <= believable then return 0, marker end
          end
        end
      elseif store and kind >= 4 and tagFrom <= tagTo and ARGV[tagFrom] == '1' then
        if not highestKnown then
          knownHighest = redis.call('HGET', headKey, 'hv')
          highestKnown = true
        end
        highest = knownHighest
        if highest and highest > ver and highest <= believable then return 0, highest end
      end
      local seq = 0
      local message = nil
      local epoch = nil
      local newEpoch = false
      local stamped = store and (kind == 1 or kind == 2)
      if (publish or stamped) and knownEpoch then
        epoch = knownEpoch
        seq = knownSeq
      elseif publish or stamped then
        local head = headRead or redis.call('HMGET', headKey, 'epoch', 'seq')
        epoch = head[1]
        seq = tonumber(head[2] or '')
        if epoch and seq then
          if publish and kind ~= 4 then
            checkByAdding = true
          elseif logPastHead(logKey, seq) then
            epoch = nil
          end
        end
        if not (epoch and seq) then
          epoch = candidateEpoch
          seq = 0
          newEpoch = true
        end
      end
      if publish then
        seq = seq + 1
        message = messageOf(epoch, seq, body)
        if checkByAdding then
          local added = redis.pcall('XADD', logKey, 'MAXLEN', '~', logMax, logID(seq), 'm', message)
          if type(added) ~= 'table' or not added.err then
            logged = true
          elseif logPastHead(logKey, seq - 1) then
            epoch = candidateEpoch
            seq = 1
            newEpoch = true
            message = messageOf(epoch, seq, body)
          end
        end
      end
      if store then
        if kind == 1 or kind == 2 then
          local keepsExpire = expired and expired > ver and expired <= believable
          local life = ttlText
          if keepsExpire then
            life = math.max(tonumber(ttlText), redis.call('PTTL', target))
          elseif #ttlText > 15 then
            life = tonumber(ttlText)
          end
          if kind == 1 then
            redis.call('HSET', target, 'v', ver, 'd', envelope, 'e', epoch)
            if (not highest) or highest < ver or highest > believable then raisedHighest = ver end
          else
            redis.call('HSET', target, 'v', ver, 'e', epoch)
            redis.call('HDEL', target, 'd')
          end
          if expired and not keepsExpire then redis.call('HDEL', target, 'x') end
          redis.call('PEXPIRE', target, life)
        elseif kind == 3 then
          if (not expired) or expired < ver then
            local ttl = tonumber(ttlText)
            redis.call('HSET', target, 'x', ver)
            if redis.call('PTTL', target) < ttl then redis.call('PEXPIRE', target, ttl) end
          end
        elseif kind == 4 then
          local field = removalField
          local current = redis.call('HGET', headKey, field)
          if (not current) or current < ver then redis.call('HSET', headKey, field, ver) end
          local time = redis.call('TIME')
          local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
          local ttl = tonumber(ttlText)
          local keepUntil = redis.call('ZSCORE', target, field)
          if (not keepUntil) or tonumber(keepUntil) < now + ttl then redis.call('ZADD', target, now + ttl, field) end
          local due = redis.call('ZRANGEBYSCORE', target, '-inf', now, 'LIMIT', 0, 16)
          for _, old in ipairs(due) do
            redis.call('HDEL', headKey, old)
            redis.call('ZREM', target, old)
          end
        elseif kind == 5 or kind == 6 then
          local field = 'x'
          if kind == 5 then field = 'r' end
          local current = redis.call('HGET', target, field)
          if (not current) or current < ver then
            redis.call('HSET', target, field, ver)
          end
        end
      end
      if newEpoch then redis.call('DEL', logKey) end
      if newEpoch or message then
        knownEpoch = epoch
        knownSeq = seq
        headDirty = true
      end
      if raisedHighest then
        knownHighest = raisedHighest
        pendingHighest = raisedHighest
      end
      if message then
        if not logged then redis.call('XADD', logKey, 'MAXLEN', '~', logMax, logID(seq), 'm', message) end
        if publishCommand == 'SPUBLISH' then
          redis.call('SPUBLISH', channel, message)
        else
          redis.call('PUBLISH', channel, message)
        end
      end
      if store and kind >= 4 then clearsKnown = false end
      if epoch then
        knownEpoch = epoch
        knownSeq = seq
      end
      return 1, seq
    end
    """#

    /// Reads an entry with its markers in one step.
    /// KEYS: 1 entry, 2 head. Returns nil, or `{version, envelope, expire, clearRemove,
    /// clearExpire, sameEpoch, headEpoch, headSeq}`, where sameEpoch is 1 when the entry was
    /// written in the head's epoch and 0 when not (written in a history Redis has lost since, or
    /// before entries recorded their epoch). The head lets the reader tell that Redis went back
    /// below what it already applied (`HybridCache.readDistributed`).
    static let read = RedisScript(#"""
    local e = redis.call('HMGET', KEYS[1], 'v', 'd', 'x', 'e')
    if (not e[1]) or (not e[2]) then return false end
    local h = redis.call('HMGET', KEYS[2], 'r', 'x', 'epoch', 'seq')
    local same = 0
    if e[4] and h[3] and e[4] == h[3] then same = 1 end
    return {e[1], e[2], e[3] or '', h[1] or '', h[2] or '', same, h[3] or '', h[4] or ''}
    """#)

    /// The head `{epoch, seq}`. A missing head (first use, eviction, lost data) becomes a new
    /// epoch at sequence 0 with an empty log, exactly as the write script would start it.
    /// KEYS: 1 head, 2 log. ARGV: 1 candidate epoch. Returns `{epoch, seq}`.
    static let head = RedisScript(#"""
    local head = redis.call('HMGET', KEYS[1], 'epoch', 'seq', 'hv')
    local seq = tonumber(head[2] or '')
    if head[1] and seq then return {head[1], seq, head[3] or ''} end
    redis.call('DEL', KEYS[2])
    redis.call('HSET', KEYS[1], 'epoch', ARGV[1], 'seq', 0)
    return {ARGV[1], 0, head[3] or ''}
    """#)

    /// A random epoch id, proposed to the scripts; Redis keeps the first one set.
    static func candidateEpoch() -> String {
        var generator = SystemRandomNumberGenerator()
        let high = UInt64.random(in: .min ... .max, using: &generator)
        let hex = String(high, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }
}
