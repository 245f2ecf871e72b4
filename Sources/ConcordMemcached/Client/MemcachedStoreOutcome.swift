/// What an `ms` (store) or `md` (delete) did.
public enum MemcachedStoreOutcome: Sendable, Equatable {
    /// Stored or deleted; the new CAS token when the server returned one.
    case stored(cas: UInt64?)
    /// `NS`: an add found the key, or a replace did not.
    case notStored
    /// `EX`: the CAS token no longer matches: another writer got there first.
    case exists
    /// `NF`: a CAS store or delete found no item.
    case notFound
}
