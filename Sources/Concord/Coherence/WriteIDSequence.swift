import Synchronization

/// The process's write ids: SplitMix64 over a counter from a random seed. An id costs an atomic
/// add instead of a `getrandom` system call per write (measured on the RESP SET path), no id
/// repeats within the process (the mix is a bijection of the counter), and two processes draw
/// from unrelated sequences, as two random ids would.
enum WriteIDSequence {
    private static let seed: UInt64 = {
        var generator = SystemRandomNumberGenerator()
        return generator.next()
    }()

    private static let counter = Atomic<UInt64>(0)

    /// The next id; never zero, as the random ids before it (zero is the id of a message built
    /// without one).
    static func next() -> UInt64 {
        while true {
            let count = counter.wrappingAdd(1, ordering: .relaxed).newValue
            let id = mix(seed &+ count &* 0x9E37_79B9_7F4A_7C15)
            if id != 0 { return id }
        }
    }

    /// SplitMix64's finalizer: a bijection on 64-bit values that spreads every input bit.
    static func mix(_ value: UInt64) -> UInt64 {
        var z = value
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
