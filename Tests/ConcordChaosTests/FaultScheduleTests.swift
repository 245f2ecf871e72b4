import ConcordChaos
import Testing

@Suite struct FaultScheduleTests {
    private func parameters(kinds: [FaultKind] = FaultKind.all(memcached: true), nodes: Int = 5, span: Duration = .seconds(120)) -> FaultSchedule.Parameters {
        var parameters = FaultSchedule.Parameters(kinds: kinds, nodeCount: nodes, span: span)
        parameters.healthyGap = .seconds(5)
        return parameters
    }

    @Test func theSameSeedGivesTheSameSchedule() {
        let first = FaultSchedule(seed: 42, parameters: parameters())
        let second = FaultSchedule(seed: 42, parameters: parameters())
        #expect(first.faults == second.faults)
        #expect(!first.faults.isEmpty)
        let other = FaultSchedule(seed: 43, parameters: parameters())
        #expect(other.faults != first.faults)
    }

    @Test(arguments: [1, 2, 3, 17, 99_999] as [UInt64])
    func faultsNeverOverlapAndHealthyPeriodsFollowEveryHeal(seed: UInt64) {
        let parameters = parameters()
        let schedule = FaultSchedule(seed: seed, parameters: parameters)
        #expect(schedule.faults.first.map { $0.start >= parameters.warmup } ?? false)
        for (fault, next) in zip(schedule.faults, schedule.faults.dropFirst()) {
            #expect(next.start >= fault.healAt + parameters.healthyGap, "\(next) starts too soon after \(fault)")
        }
        if let last = schedule.faults.last {
            #expect(last.healAt + parameters.healthyGap <= parameters.span)
        }
    }

    @Test func everyFaultIsHealedAndHeldWithinItsRange() {
        let parameters = parameters()
        for seed in 1...20 as ClosedRange<UInt64> {
            for fault in FaultSchedule(seed: seed, parameters: parameters).faults {
                #expect(fault.healAt >= fault.start)
                if fault.kind.isInstant {
                    #expect(fault.hold == .zero)
                } else {
                    #expect(parameters.hold.contains(fault.hold), "\(fault)")
                }
            }
        }
    }

    @Test func everyKindComesUpBeforeAnyRepeats() {
        let schedule = FaultSchedule(seed: 7, parameters: parameters(span: .seconds(400)))
        let all = FaultKind.all(memcached: true)
        #expect(schedule.faults.count > all.count)
        #expect(Set(schedule.faults.prefix(all.count).map(\.kind)) == Set(all))
    }

    @Test func targetsFitTheKind() {
        for seed in 1...20 as ClosedRange<UInt64> {
            for fault in FaultSchedule(seed: seed, parameters: parameters(span: .seconds(300))).faults {
                switch fault.kind {
                case .partitionOne, .partitionDeaf, .partitionMute, .blackholeOne, .blackholeDeaf, .nodeKill, .clockSkew: #expect(fault.targets.count == 1)
                case .partitionHalf: #expect(fault.targets.count == 2)
                case .partitionAll, .latency, .reset: #expect(fault.targets == [0, 1, 2, 3, 4])
                case .memcachedKill, .memcachedPause, .memcachedPartition, .memcachedFlush:
                    // The one memcached server it acts on.
                    #expect(fault.targets.count == 1 && (0..<2).contains(fault.targets[0]))
                default: #expect(fault.targets.isEmpty)
                }
                #expect(fault.targets.allSatisfy { (0..<5).contains($0) })
                #expect((fault.kind == .latency || fault.kind == .reset || fault.kind == .clockSkew) == (fault.magnitude != nil))
                if fault.kind == .clockSkew, let offset = fault.magnitude { #expect(offset >= .seconds(20) && offset <= .seconds(40)) }
            }
        }
    }

    @Test func theQuickScheduleHasEveryQuickKindForAnySeed() {
        var configuration = ChaosConfiguration.quick()
        for seed in 1...50 as ClosedRange<UInt64> {
            configuration.seed = seed
            let schedule = FaultSchedule(seed: seed, parameters: configuration.scheduleParameters)
            #expect(Set(schedule.faults.map(\.kind)) == Set(FaultKind.quick), "seed \(seed): \(schedule.faults)")
        }
        // The healthy gap after a heal must leave room to see convergence.
        #expect(configuration.scheduleParameters.healthyGap >= configuration.bounds.convergenceBound)
    }

    @Test func theQuickSentinelScheduleHasEveryFailoverKindForAnySeed() throws {
        var configuration = ChaosConfiguration.quickSentinel()
        try configuration.validate()
        for seed in 1...50 as ClosedRange<UInt64> {
            configuration.seed = seed
            let schedule = FaultSchedule(seed: seed, parameters: configuration.scheduleParameters)
            #expect(Set(schedule.faults.map(\.kind)) == Set(FaultKind.quickSentinel), "seed \(seed): \(schedule.faults)")
            #expect(schedule.faults.allSatisfy { $0.targets.isEmpty && $0.kind.isFailover })
        }
    }

    @Test func theQuickClusterScheduleHasEveryClusterKindForAnySeed() throws {
        var configuration = ChaosConfiguration.quickCluster()
        try configuration.validate()
        for seed in 1...50 as ClosedRange<UInt64> {
            configuration.seed = seed
            let schedule = FaultSchedule(seed: seed, parameters: configuration.scheduleParameters)
            #expect(Set(schedule.faults.map(\.kind)) == Set(FaultKind.quickCluster), "seed \(seed): \(schedule.faults)")
            #expect(schedule.faults.allSatisfy { $0.targets.isEmpty && $0.kind.targetsCluster })
        }
        // A slot migration loses nothing, so it gets no failover allowance; the failovers do.
        #expect(!FaultKind.slotMigrate.isFailover)
        #expect(FaultKind.shardFailover.isFailover && FaultKind.primaryKill.isFailover)
    }

    @Test func faultsMustSuitTheTopology() {
        var configuration = ChaosConfiguration()
        configuration.topology = .sentinel
        configuration.faults = [.partitionOne]
        #expect(throws: ChaosError.self) { try configuration.validate() }
        configuration.topology = .standalone
        configuration.faults = [.masterKill]
        #expect(throws: ChaosError.self) { try configuration.validate() }
        configuration.faults = [.slotMigrate]
        #expect(throws: ChaosError.self) { try configuration.validate() }
        configuration.topology = .cluster
        #expect(throws: Never.self) { try configuration.validate() }
        configuration.faults = [.failover]
        #expect(throws: ChaosError.self) { try configuration.validate() }
    }

    @Test func noFaultsWhenNoneFits() {
        #expect(FaultSchedule(seed: 1, parameters: parameters(span: .seconds(4))).faults.isEmpty)
        #expect(FaultSchedule(seed: 1, parameters: parameters(kinds: [])).faults.isEmpty)
    }

    @Test func faultListsParse() throws {
        #expect(try FaultKind.parseList("all") == FaultKind.all(memcached: true))
        #expect(FaultKind.available(in: .sentinel) == [.failover, .masterKill, .replicaLag, .nodeKill])
        #expect(FaultKind.all(memcached: true).allSatisfy { !$0.isFailover && !$0.targetsCluster })
        #expect(FaultKind.available(in: .cluster) == [.slotMigrate, .shardFailover, .primaryKill, .nodeKill])
        #expect(try FaultKind.parseList("replica-lag,failover") == [.replicaLag, .failover])
        #expect(try FaultKind.parseList("redis-kill, node-kill,redis-kill") == [.redisKill, .nodeKill])
        #expect(try FaultKind.parseList("none") == [])
        #expect(throws: ChaosError.self) { try FaultKind.parseList("redis-kill,meteor") }
        #expect(throws: ChaosError.self) { try FaultKind.parseList(",") }
    }

    @Test func durationsParseAndFormat() throws {
        #expect(try DurationText.parse("250ms") == .milliseconds(250))
        #expect(try DurationText.parse("30s") == .seconds(30))
        #expect(try DurationText.parse("2m") == .seconds(120))
        #expect(try DurationText.parse("1h") == .seconds(3_600))
        #expect(try DurationText.parse("1.5s") == .milliseconds(1_500))
        // One rule for every CLI flag (DurationSyntax): a bare number is refused, since it could
        // mean seconds or milliseconds.
        #expect(throws: ChaosError.self) { try DurationText.parse("90") }
        #expect(throws: ChaosError.self) { try DurationText.parse("soon") }
        #expect(throws: ChaosError.self) { try DurationText.parse("-1s") }
        #expect(DurationText.format(.milliseconds(1_500)) == "1500ms")
        #expect(DurationText.format(.seconds(2)) == "2s")
        #expect(DurationText.format(.seconds(120)) == "2m")
    }

    @Test func boundsFollowTheNodeSettings() {
        var configuration = ChaosConfiguration()
        configuration.delta = .milliseconds(500)
        configuration.node.reconnectBackoffCap = .seconds(2)
        configuration.node.maxDisconnectedStaleness = .seconds(3)
        let bounds = configuration.bounds
        #expect(bounds.delta == .milliseconds(500))
        #expect(bounds.maxDisconnectedStaleness == .seconds(3))
        #expect(bounds.convergenceBound == .seconds(2) + configuration.node.heartbeatInterval + .milliseconds(500))
        #expect(configuration.node.arguments.contains("--fail-safe"))
        #expect(!configuration.node.arguments.contains("--no-backplane"))
        configuration.node.backplane = false
        #expect(configuration.node.arguments.contains("--no-backplane"))
    }
}
