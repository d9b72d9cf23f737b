//! The chaos harness: namespaces and links, the nemesis, clients, the recorded history and its checkers.
