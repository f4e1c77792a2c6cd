//! Request, response and language codes of the remoting protocol.
//!
//! Codes are plain numbers on the wire. Request codes are `i32` constants in
//! [`request`]; response codes are the [`ResponseCode`] enum, which keeps any
//! number it does not know in [`ResponseCode::Unknown`] instead of failing.

/// Request codes (the `code` of a request frame).
pub mod request {
    /// SEND_MESSAGE (v1 header with long field names).
    pub const SEND_MESSAGE: i32 = 10;
    /// PULL_MESSAGE.
    pub const PULL_MESSAGE: i32 = 11;
    /// QUERY_MESSAGE.
    pub const QUERY_MESSAGE: i32 = 12;
    /// QUERY_CONSUMER_OFFSET.
    pub const QUERY_CONSUMER_OFFSET: i32 = 14;
    /// UPDATE_CONSUMER_OFFSET.
    pub const UPDATE_CONSUMER_OFFSET: i32 = 15;
    /// UPDATE_AND_CREATE_TOPIC (admin, sent to a broker).
    pub const UPDATE_AND_CREATE_TOPIC: i32 = 17;
    /// GET_BROKER_RUNTIME_INFO.
    pub const GET_BROKER_RUNTIME_INFO: i32 = 28;
    /// SEARCH_OFFSET_BY_TIMESTAMP.
    pub const SEARCH_OFFSET_BY_TIMESTAMP: i32 = 29;
    /// GET_MAX_OFFSET.
    pub const GET_MAX_OFFSET: i32 = 30;
    /// GET_MIN_OFFSET.
    pub const GET_MIN_OFFSET: i32 = 31;
    /// GET_EARLIEST_MSG_STORETIME.
    pub const GET_EARLIEST_MSG_STORETIME: i32 = 32;
    /// VIEW_MESSAGE_BY_ID.
    pub const VIEW_MESSAGE_BY_ID: i32 = 33;
    /// HEART_BEAT.
    pub const HEART_BEAT: i32 = 34;
    /// UNREGISTER_CLIENT.
    pub const UNREGISTER_CLIENT: i32 = 35;
    /// CONSUMER_SEND_MSG_BACK.
    pub const CONSUMER_SEND_MSG_BACK: i32 = 36;
    /// END_TRANSACTION (oneway).
    pub const END_TRANSACTION: i32 = 37;
    /// GET_CONSUMER_LIST_BY_GROUP.
    pub const GET_CONSUMER_LIST_BY_GROUP: i32 = 38;
    /// CHECK_TRANSACTION_STATE (broker to client).
    pub const CHECK_TRANSACTION_STATE: i32 = 39;
    /// NOTIFY_CONSUMER_IDS_CHANGED (broker to client).
    pub const NOTIFY_CONSUMER_IDS_CHANGED: i32 = 40;
    /// LOCK_BATCH_MQ.
    pub const LOCK_BATCH_MQ: i32 = 41;
    /// UNLOCK_BATCH_MQ.
    pub const UNLOCK_BATCH_MQ: i32 = 42;
    /// GET_ROUTEINFO_BY_TOPIC (name server).
    pub const GET_ROUTEINFO_BY_TOPIC: i32 = 105;
    /// GET_BROKER_CLUSTER_INFO (name server).
    pub const GET_BROKER_CLUSTER_INFO: i32 = 106;
    /// RESET_CONSUMER_CLIENT_OFFSET (broker to client).
    pub const RESET_CONSUMER_CLIENT_OFFSET: i32 = 220;
    /// GET_CONSUMER_STATUS_FROM_CLIENT (broker to client).
    pub const GET_CONSUMER_STATUS_FROM_CLIENT: i32 = 221;
    /// GET_CONSUMER_RUNNING_INFO (broker to client).
    pub const GET_CONSUMER_RUNNING_INFO: i32 = 307;
    /// CONSUME_MESSAGE_DIRECTLY (broker to client).
    pub const CONSUME_MESSAGE_DIRECTLY: i32 = 309;
    /// SEND_MESSAGE_V2 (short header field names).
    pub const SEND_MESSAGE_V2: i32 = 310;
    /// SEND_BATCH_MESSAGE.
    pub const SEND_BATCH_MESSAGE: i32 = 320;
    /// SEND_REPLY_MESSAGE.
    pub const SEND_REPLY_MESSAGE: i32 = 324;
    /// SEND_REPLY_MESSAGE_V2.
    pub const SEND_REPLY_MESSAGE_V2: i32 = 325;
    /// PUSH_REPLY_MESSAGE_TO_CLIENT (broker to client).
    pub const PUSH_REPLY_MESSAGE_TO_CLIENT: i32 = 326;
    /// QUERY_ASSIGNMENT (5.x): the queues a broker assigns to a client, with their mode.
    pub const QUERY_ASSIGNMENT: i32 = 400;
    /// SET_MESSAGE_REQUEST_MODE (5.x admin, `mqadmin setConsumeMode`).
    pub const SET_MESSAGE_REQUEST_MODE: i32 = 401;
    /// POP_MESSAGE (5.x).
    pub const POP_MESSAGE: i32 = 200050;
    /// ACK_MESSAGE (5.x).
    pub const ACK_MESSAGE: i32 = 200051;
    /// CHANGE_MESSAGE_INVISIBLETIME (5.x).
    pub const CHANGE_MESSAGE_INVISIBLETIME: i32 = 200053;
}

/// A short name of a request code, used in timeout errors.
pub fn request_name(code: i32) -> &'static str {
    use request::*;
    match code {
        SEND_MESSAGE | SEND_MESSAGE_V2 => "send message",
        SEND_BATCH_MESSAGE => "send batch",
        PULL_MESSAGE => "pull message",
        QUERY_MESSAGE => "query message",
        QUERY_CONSUMER_OFFSET => "query consumer offset",
        UPDATE_CONSUMER_OFFSET => "update consumer offset",
        UPDATE_AND_CREATE_TOPIC => "create topic",
        GET_BROKER_RUNTIME_INFO => "get broker runtime info",
        SEARCH_OFFSET_BY_TIMESTAMP => "search offset by timestamp",
        GET_MAX_OFFSET => "get max offset",
        GET_MIN_OFFSET => "get min offset",
        GET_EARLIEST_MSG_STORETIME => "get earliest message store time",
        VIEW_MESSAGE_BY_ID => "view message by id",
        HEART_BEAT => "heartbeat",
        UNREGISTER_CLIENT => "unregister client",
        CONSUMER_SEND_MSG_BACK => "send message back",
        END_TRANSACTION => "end transaction",
        GET_CONSUMER_LIST_BY_GROUP => "get consumer list",
        LOCK_BATCH_MQ => "lock queues",
        UNLOCK_BATCH_MQ => "unlock queues",
        GET_ROUTEINFO_BY_TOPIC => "get topic route",
        GET_BROKER_CLUSTER_INFO => "get cluster info",
        QUERY_ASSIGNMENT => "query assignment",
        POP_MESSAGE => "pop message",
        ACK_MESSAGE => "ack message",
        CHANGE_MESSAGE_INVISIBLETIME => "change invisible time",
        _ => "request",
    }
}

macro_rules! response_codes {
    ($($(#[$doc:meta])* $name:ident = $value:literal,)*) => {
        /// A response code. Unknown numbers are kept in [`ResponseCode::Unknown`].
        ///
        /// ```
        /// use rocketmq_blocking::protocol::ResponseCode;
        ///
        /// assert_eq!(ResponseCode::from_i32(17), ResponseCode::TopicNotExist);
        /// assert_eq!(ResponseCode::from_i32(4242), ResponseCode::Unknown(4242));
        /// assert_eq!(ResponseCode::Unknown(4242).as_i32(), 4242);
        /// ```
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum ResponseCode {
            $($(#[$doc])* $name,)*
            /// A code this crate does not know, kept as sent.
            Unknown(i32),
        }

        impl ResponseCode {
            /// Maps a wire number to a code (never fails).
            pub fn from_i32(code: i32) -> Self {
                match code {
                    $($value => ResponseCode::$name,)*
                    other => ResponseCode::Unknown(other),
                }
            }

            /// The wire number.
            pub fn as_i32(self) -> i32 {
                match self {
                    $(ResponseCode::$name => $value,)*
                    ResponseCode::Unknown(other) => other,
                }
            }
        }
    };
}

response_codes! {
    /// 0
    Success = 0,
    /// 1
    SystemError = 1,
    /// 2
    SystemBusy = 2,
    /// 3
    RequestCodeNotSupported = 3,
    /// 4
    TransactionFailed = 4,
    /// 10: stored, but the flush to disk timed out.
    FlushDiskTimeout = 10,
    /// 11: stored, but no slave was available.
    SlaveNotAvailable = 11,
    /// 12: stored, but the slave flush timed out.
    FlushSlaveTimeout = 12,
    /// 13
    MessageIllegal = 13,
    /// 14
    ServiceNotAvailable = 14,
    /// 15
    VersionNotSupported = 15,
    /// 16
    NoPermission = 16,
    /// 17
    TopicNotExist = 17,
    /// 18
    TopicExistAlready = 18,
    /// 19: pull found no new message.
    PullNotFound = 19,
    /// 20: pull found no matching message; retry at once.
    PullRetryImmediately = 20,
    /// 21: the pull offset is out of range.
    PullOffsetMoved = 21,
    /// 22
    QueryNotFound = 22,
    /// 23
    SubscriptionParseFailed = 23,
    /// 24
    SubscriptionNotExist = 24,
    /// 25
    SubscriptionNotLatest = 25,
    /// 26
    SubscriptionGroupNotExist = 26,
    /// 27
    FilterDataNotExist = 27,
    /// 28
    FilterDataNotLatest = 28,
    /// 29
    InvalidParameter = 29,
    /// 200
    TransactionShouldCommit = 200,
    /// 201
    TransactionShouldRollback = 201,
    /// 202
    TransactionStateUnknow = 202,
    /// 203
    TransactionStateGroupWrong = 203,
    /// 204
    NoBuyerId = 204,
    /// 205
    NotInCurrentUnit = 205,
    /// 206
    ConsumerNotOnline = 206,
    /// 207
    ConsumeMsgTimeout = 207,
    /// 208
    NoMessage = 208,
    /// 209
    PollingFull = 209,
    /// 210
    PollingTimeout = 210,
    /// 215
    FlowControl = 215,
    /// 501
    NotLeaderForQueue = 501,
    /// 604
    IllegalOperation = 604,
    /// 1500
    GoAway = 1500,
}

impl From<i32> for ResponseCode {
    fn from(code: i32) -> Self {
        ResponseCode::from_i32(code)
    }
}

/// The client language sent in every request header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LanguageCode {
    /// 0
    Java,
    /// 1
    Cpp,
    /// 2
    Dotnet,
    /// 3
    Python,
    /// 4
    Delphi,
    /// 5
    Erlang,
    /// 6
    Ruby,
    /// 7
    Other,
    /// 8
    Http,
    /// 9
    Go,
    /// 10
    Php,
    /// 11
    Oms,
    /// 12
    Rust,
    /// 13
    NodeJs,
    /// A code this crate does not know.
    Unknown(u8),
}

const LANGUAGES: [(LanguageCode, &str); 14] = [
    (LanguageCode::Java, "JAVA"),
    (LanguageCode::Cpp, "CPP"),
    (LanguageCode::Dotnet, "DOTNET"),
    (LanguageCode::Python, "PYTHON"),
    (LanguageCode::Delphi, "DELPHI"),
    (LanguageCode::Erlang, "ERLANG"),
    (LanguageCode::Ruby, "RUBY"),
    (LanguageCode::Other, "OTHER"),
    (LanguageCode::Http, "HTTP"),
    (LanguageCode::Go, "GO"),
    (LanguageCode::Php, "PHP"),
    (LanguageCode::Oms, "OMS"),
    (LanguageCode::Rust, "RUST"),
    (LanguageCode::NodeJs, "NODE_JS"),
];

impl LanguageCode {
    /// The byte used by the ROCKETMQ binary header.
    pub fn as_u8(self) -> u8 {
        match self {
            LanguageCode::Unknown(n) => n,
            known => LANGUAGES.iter().position(|(l, _)| *l == known).map_or(7, |i| i as u8),
        }
    }

    /// Maps a byte of the binary header to a language.
    pub fn from_u8(code: u8) -> Self {
        LANGUAGES.get(code as usize).map_or(LanguageCode::Unknown(code), |(l, _)| *l)
    }

    /// The enum name used by the JSON header (`"JAVA"`, `"RUST"`, ...).
    pub fn name(self) -> &'static str {
        match self {
            LanguageCode::Unknown(_) => "OTHER",
            known => LANGUAGES.iter().find(|(l, _)| *l == known).map_or("OTHER", |(_, n)| n),
        }
    }

    /// Maps a JSON enum name to a language; `None` for a name not known.
    pub fn from_name(name: &str) -> Option<Self> {
        LANGUAGES.iter().find(|(_, n)| *n == name).map(|(l, _)| *l)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_codes_round_trip() {
        for n in [0, 1, 2, 10, 17, 19, 20, 21, 206, 1500, 4242, -1] {
            assert_eq!(ResponseCode::from_i32(n).as_i32(), n);
        }
        assert_eq!(ResponseCode::from_i32(4242), ResponseCode::Unknown(4242));
        assert_eq!(ResponseCode::from_i32(17), ResponseCode::TopicNotExist);
    }

    #[test]
    fn languages_round_trip() {
        for b in 0..=255u8 {
            assert_eq!(LanguageCode::from_u8(b).as_u8(), b);
        }
        assert_eq!(LanguageCode::Rust.as_u8(), 12);
        assert_eq!(LanguageCode::from_name("GO"), Some(LanguageCode::Go));
        assert_eq!(LanguageCode::Rust.name(), "RUST");
    }
}
