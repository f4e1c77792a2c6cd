//! The remoting protocol as pure functions over bytes: frames, codes,
//! typed headers, messages and routes. Nothing here opens a socket or
//! starts a thread, and no input makes it panic.

pub mod admin;
pub mod body;
pub mod codes;
pub mod compress;
pub mod frame;
pub mod header;
pub mod message;
pub mod pop;
pub mod reply;
pub mod route;

pub use codes::{request, LanguageCode, ResponseCode};
pub use frame::{
    decode_frame, frame_length, RemotingCommand, SerializeType, CLIENT_VERSION, DEFAULT_MAX_FRAME_SIZE, FLAG_ONEWAY,
    FLAG_RESPONSE,
};
pub use message::{Message, MessageExt, MessageQueue};
pub use route::{BrokerData, ClusterInfo, QueueData, RouteLimits, TopicRouteData};
