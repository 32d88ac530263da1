//! The frame loop both Bedrock stream decoders (ConverseStream, InvokeModelWithResponseStream)
//! run on: body chunks in, whole CRC-checked frames out, one at a time, to the decoder.

use crate::error::ProtocolError;
use crate::eventstream::{EventStreamDecoder, EventStreamError, Frame};

/// Buffers the incomplete frame and hands each complete one to a decoder. A broken frame,
/// or a decoder error, stops the frames after it: the stream cannot continue.
#[derive(Debug, Default)]
pub(super) struct Frames {
    decoder: EventStreamDecoder,
    /// Reused between pushes so a steady stream allocates no frame list per chunk.
    scratch: Vec<Frame>,
}

impl Frames {
    /// Feeds `bytes`; `each` gets every frame they complete, in order, until one fails.
    pub(super) fn push(
        &mut self,
        bytes: &[u8],
        mut each: impl FnMut(&Frame) -> Result<(), ProtocolError>,
    ) -> Result<(), ProtocolError> {
        let mut frames = std::mem::take(&mut self.scratch);
        let mut result = self.decoder.push(bytes, &mut frames).map_err(malformed);
        for frame in frames.drain(..) {
            if result.is_ok() {
                result = each(&frame);
            }
        }
        self.scratch = frames;
        result
    }

    /// At the end of the body: a body cut inside a frame is an error.
    pub(super) fn finish(&self) -> Result<(), ProtocolError> {
        self.decoder.finish().map_err(malformed)
    }
}

fn malformed(error: EventStreamError) -> ProtocolError {
    ProtocolError::MalformedUpstream(error.to_string())
}
