//! The message model: a start line, an index of headers and a body, all
//! borrowed from the bytes that were parsed.

/// A parsed SIP message. Header values are the raw text after the colon
/// (leading and trailing whitespace trimmed, folded lines left in place: the
/// typed accessors treat CRLF followed by whitespace as ordinary whitespace).
#[derive(Debug, Clone)]
pub struct Message<'a> {
    /// Request line or status line.
    pub start: StartLine<'a>,
    /// Headers in the order they appeared.
    pub headers: Vec<Header<'a>>,
    /// The body: exactly Content-Length bytes (or, on UDP without
    /// Content-Length, the rest of the datagram).
    pub body: &'a [u8],
}

/// First line of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartLine<'a> {
    /// `METHOD Request-URI SIP/2.0`
    Request {
        /// The method.
        method: Method<'a>,
        /// The Request-URI as written (not yet validated; see [`crate::check`]).
        uri: &'a str,
        /// The version token, `SIP/2.0` for every message we act on.
        version: &'a str,
    },
    /// `SIP/2.0 code reason`
    Response {
        /// Status code, 100..=699 once checked.
        code: u16,
        /// Reason phrase (may be empty).
        reason: &'a str,
        /// The version token.
        version: &'a str,
    },
}

/// A SIP method. Methods are case-sensitive (RFC 3261 §7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method<'a> {
    /// INVITE
    Invite,
    /// ACK
    Ack,
    /// BYE
    Bye,
    /// CANCEL
    Cancel,
    /// OPTIONS
    Options,
    /// REGISTER
    Register,
    /// SUBSCRIBE
    Subscribe,
    /// NOTIFY
    Notify,
    /// PUBLISH
    Publish,
    /// INFO
    Info,
    /// PRACK
    Prack,
    /// UPDATE
    Update,
    /// MESSAGE
    Message,
    /// REFER
    Refer,
    /// Any other token.
    Other(&'a str),
}

impl<'a> Method<'a> {
    /// Recognise a method token (case-sensitive).
    pub fn from_token(s: &'a str) -> Method<'a> {
        match s {
            "INVITE" => Method::Invite,
            "ACK" => Method::Ack,
            "BYE" => Method::Bye,
            "CANCEL" => Method::Cancel,
            "OPTIONS" => Method::Options,
            "REGISTER" => Method::Register,
            "SUBSCRIBE" => Method::Subscribe,
            "NOTIFY" => Method::Notify,
            "PUBLISH" => Method::Publish,
            "INFO" => Method::Info,
            "PRACK" => Method::Prack,
            "UPDATE" => Method::Update,
            "MESSAGE" => Method::Message,
            "REFER" => Method::Refer,
            other => Method::Other(other),
        }
    }

    /// The method token.
    pub fn as_str(&self) -> &'a str {
        match self {
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Options => "OPTIONS",
            Method::Register => "REGISTER",
            Method::Subscribe => "SUBSCRIBE",
            Method::Notify => "NOTIFY",
            Method::Publish => "PUBLISH",
            Method::Info => "INFO",
            Method::Prack => "PRACK",
            Method::Update => "UPDATE",
            Method::Message => "MESSAGE",
            Method::Refer => "REFER",
            Method::Other(s) => s,
        }
    }
}

/// One header line (or folded lines) of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header<'a> {
    /// The header's name, compact forms expanded.
    pub name: HeaderName<'a>,
    /// The value after the colon, trimmed; may contain folded line breaks.
    pub value: &'a str,
}

macro_rules! header_names {
    ($( $variant:ident = $canon:literal $(, $compact:literal)? ; )*) => {
        /// Header names the server knows, plus `Other` for the rest. Names
        /// compare case-insensitively; compact forms map to the full name.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum HeaderName<'a> {
            $(
                #[doc = $canon]
                $variant,
            )*
            /// Any other header, name as written.
            Other(&'a str),
        }

        impl<'a> HeaderName<'a> {
            /// Recognise a header name (case-insensitive; compact forms too).
            pub fn from_name(s: &'a str) -> HeaderName<'a> {
                $(
                    if s.eq_ignore_ascii_case($canon) $( || s.eq_ignore_ascii_case($compact) )? {
                        return HeaderName::$variant;
                    }
                )*
                HeaderName::Other(s)
            }

            /// Every known name: its canonical spelling, then its compact
            /// form if it has one (for tests that must cover them all).
            #[cfg(test)]
            pub(crate) const SPELLINGS: &'static [&'static [&'static str]] =
                &[ $( &[$canon $(, $compact)?] ),* ];

            /// The canonical spelling of a known name; `None` for `Other`.
            pub fn canonical(&self) -> Option<&'static str> {
                match self {
                    $( HeaderName::$variant => Some($canon), )*
                    HeaderName::Other(_) => None,
                }
            }

            /// The canonical spelling of the name.
            pub fn as_str(&self) -> &'a str {
                match self {
                    $( HeaderName::$variant => $canon, )*
                    HeaderName::Other(s) => s,
                }
            }
        }
    };
}

header_names! {
    Via = "Via", "v";
    From = "From", "f";
    To = "To", "t";
    CallId = "Call-ID", "i";
    CSeq = "CSeq";
    MaxForwards = "Max-Forwards";
    Contact = "Contact", "m";
    RecordRoute = "Record-Route";
    Route = "Route";
    Expires = "Expires";
    MinExpires = "Min-Expires";
    Event = "Event", "o";
    AllowEvents = "Allow-Events", "u";
    Accept = "Accept";
    ContentType = "Content-Type", "c";
    ContentLength = "Content-Length", "l";
    ContentEncoding = "Content-Encoding", "e";
    Require = "Require";
    ProxyRequire = "Proxy-Require";
    Supported = "Supported", "k";
    Unsupported = "Unsupported";
    CallInfo = "Call-Info";
    SipETag = "SIP-ETag";
    SipIfMatch = "SIP-If-Match";
    SubscriptionState = "Subscription-State";
    Allow = "Allow";
    RetryAfter = "Retry-After";
    UserAgent = "User-Agent";
    Server = "Server";
    Date = "Date";
}

impl<'a> Message<'a> {
    /// The request method, or `None` for a response.
    pub fn method(&self) -> Option<Method<'a>> {
        match self.start {
            StartLine::Request { method, .. } => Some(method),
            StartLine::Response { .. } => None,
        }
    }

    /// The status code, or `None` for a request.
    pub fn status(&self) -> Option<u16> {
        match self.start {
            StartLine::Response { code, .. } => Some(code),
            StartLine::Request { .. } => None,
        }
    }

    /// Whether this is a request.
    pub fn is_request(&self) -> bool {
        matches!(self.start, StartLine::Request { .. })
    }

    /// The Request-URI text, for a request.
    pub fn request_uri(&self) -> Option<&'a str> {
        match self.start {
            StartLine::Request { uri, .. } => Some(uri),
            StartLine::Response { .. } => None,
        }
    }

    /// Raw value of the first header with this name.
    pub fn header(&self, name: HeaderName<'_>) -> Option<&'a str> {
        self.headers
            .iter()
            .find(|h| h.name == name)
            .map(|h| h.value)
    }

    /// Raw values of every header line with this name, in order.
    pub fn header_lines<'s>(&'s self, name: HeaderName<'s>) -> impl Iterator<Item = &'a str> + 's {
        self.headers
            .iter()
            .filter(move |h| h.name == name)
            .map(|h| h.value)
    }

    /// How many header lines carry this name.
    pub fn count(&self, name: HeaderName<'_>) -> usize {
        self.headers.iter().filter(|h| h.name == name).count()
    }

    /// Every comma-separated element of every header line with this name, in
    /// order, each trimmed. Commas inside quoted strings and `<...>` do not
    /// split. Use for list headers (Via, Contact, Route, Call-Info, Require...).
    pub fn elements<'s>(&'s self, name: HeaderName<'s>) -> impl Iterator<Item = &'a str> + 's {
        self.header_lines(name).flat_map(crate::text::split_commas)
    }
}
