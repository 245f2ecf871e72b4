/// The L2 backend the `l2` suite measures.
package enum L2Backend: String, CaseIterable, Sendable {
    case redis, memcached
}
