/// A position in the feed's log, `"<commit_seq>/<change id>"`: the order changes are delivered in.
public struct FeedCursor: Comparable, Hashable, Sendable, CustomStringConvertible {
    public var commitSequence: Int64
    public var changeID: Int64

    public init(commitSequence: Int64, changeID: Int64) {
        self.commitSequence = commitSequence
        self.changeID = changeID
    }

    /// Parses `41/1077`; nil for anything else, including negative parts.
    public init?(_ text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let sequence = Int64(parts[0]), let id = Int64(parts[1]), sequence >= 0, id >= 0 else { return nil }
        self.init(commitSequence: sequence, changeID: id)
    }

    public var description: String { "\(commitSequence)/\(changeID)" }

    public static func < (left: FeedCursor, right: FeedCursor) -> Bool {
        (left.commitSequence, left.changeID) < (right.commitSequence, right.changeID)
    }
}
