/// How the coherence loop spares Redis a round trip per suspicious message: the last head it
/// read, whether one was read since the last message applied, and a check owed for later.
struct HeadCheckState: Sendable {
    var lastHead: BackplaneHead?
    var checkedSinceApply = false
    var isCheckOwed = false
}
