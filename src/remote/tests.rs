//! Unit tests of the remote client: connect strings, chroot mapping, and the reconnect state machine against a fake server.

use super::*;
