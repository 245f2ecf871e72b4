#!/usr/bin/env bash
# Fuzzes the decoders that read bytes from the wire, with libFuzzer (swiftc -sanitize=fuzzer):
#   backplane-message  BackplaneMessage.decode (messages and log entries), with and without a key
#   entry-envelope     DistributedEntry.decode (L2 envelopes) and the read arithmetic on them
#   resp-reader        the RESP reader (hiredis redisReader + conversion to RESPValue)
#   resp-request       the RESP front end's request reader, read whole and in two pieces (in place too)
#   http-head          the HTTP head scanner in front of the node's decoder, whole and cut at every length
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]    # default: 60 s per target, every target
#
# Each target runs for SECONDS from its seed corpus (Fuzz/Corpus/TARGET, grown in
# .build/fuzz/corpus/TARGET). A crash leaves its input in .build/fuzz/crashes/TARGET and makes
# the script exit 1: turn that input into a regression test (Tests/*/FuzzRegressionTests.swift).
# The last line per target is libFuzzer's own count: "Done N runs in S second(s)".
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-60}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then targets=(backplane-message entry-envelope resp-reader resp-request http-head); fi

concord_sources=(
    Sources/Concord/Coherence/BackplaneMessage.swift
    Sources/Concord/Coherence/BackplaneTraceContext.swift
    Sources/Concord/Coherence/CacheMutation.swift
    Sources/Concord/Coherence/WriteIDSequence.swift
    Sources/Concord/Coherence/MutationKind.swift
    Sources/Concord/Distributed/DistributedEntry.swift
    Sources/Concord/Versioning/CacheVersion.swift
    Sources/Concord/Versioning/Duration+Clamped.swift
    Sources/Concord/Versioning/Saturating.swift
    Sources/Concord/Serialization/BinaryCoding.swift
    Sources/Concord/Backplane/MessageAuthenticator.swift
    Sources/Concord/Memory/CacheInstant.swift
    Sources/Concord/CacheError.swift
)
resp_sources=(
    Sources/ConcordRedis/Client/RESPReader.swift
    Sources/ConcordRedis/Client/RESPValue.swift
    Sources/ConcordRedis/Client/RedisError.swift
)

out=.build/fuzz
mkdir -p "$out/bin"
status=0
for target in "${targets[@]}"; do
    case "$target" in
        backplane-message) sources=(Fuzz/Targets/BackplaneMessageFuzz.swift "${concord_sources[@]}"); extra=() ;;
        entry-envelope) sources=(Fuzz/Targets/EntryEnvelopeFuzz.swift "${concord_sources[@]}"); extra=() ;;
        resp-reader) sources=(Fuzz/Targets/RESPReaderFuzz.swift "${resp_sources[@]}"); extra=(-I Sources/CHiredis -lhiredis) ;;
        resp-request) sources=(Fuzz/Targets/RESPRequestFuzz.swift Sources/ConcordNode/RESP/RESPRequestReader.swift Sources/ConcordNode/RESP/RESPArguments.swift Sources/ConcordNode/RESP/RESPProtocolError.swift); extra=() ;;
        http-head) sources=(Fuzz/Targets/HTTPHeadFuzz.swift Sources/ConcordNode/HTTP/HTTPHeadScanner.swift); extra=() ;;
        *) echo "fuzz.sh: unknown target '$target'" >&2; exit 2 ;;
    esac
    binary="$out/bin/$target"
    echo "== $target: building"
    # The linker warns about every sanitizer symbol it cannot export; keep that out of the output.
    if ! swiftc -sanitize=fuzzer,address -parse-as-library -O -g -module-name ConcordFuzz -package-name concord \
        "${extra[@]}" "${sources[@]}" -o "$binary" >"$out/$target.build.log" 2>&1; then
        grep -v "Cannot export local symbol" "$out/$target.build.log" >&2
        exit 1
    fi
    mkdir -p "$out/corpus/$target" "$out/crashes/$target"
    echo "== $target: fuzzing for ${seconds}s"
    log="$out/$target.log"
    if "$binary" -max_total_time="$seconds" -print_final_stats=1 -artifact_prefix="$out/crashes/$target/" \
        "$out/corpus/$target" "Fuzz/Corpus/$target" >"$log" 2>&1; then
        grep -E "^Done [0-9]+ runs" "$log" | sed "s/^/$target: /"
    else
        status=1
        echo "fuzz.sh: $target crashed; input in $out/crashes/$target, log in $log" >&2
        tail -40 "$log" >&2
    fi
done
exit $status
