/// Where a mutation goes: L2 (announcing it or not), or the backplane alone when there is no L2.
enum WriteTarget: Sendable, Equatable {
    case distributed(publish: Bool)
    case backplaneOnly
}
