"""Media I/O over PyAV: probing, streaming decode, encode/remux with atomic output.

No ffmpeg pipes and no frames on disk: frames go from the decoder to tensors and back to the
encoder in memory; audio and subtitles are copied packet for packet.
"""

from vidcolor.media.plan import EncodeConfig, OutputPlan, plan_output
from vidcolor.media.probe import MediaInfo, StreamInfo, VideoInfo, probe
from vidcolor.media.reader import DecodedBatch, VideoReader
from vidcolor.media.writer import VideoWriter, partial_paths

__all__ = [
    "EncodeConfig",
    "DecodedBatch",
    "MediaInfo",
    "OutputPlan",
    "StreamInfo",
    "VideoInfo",
    "VideoReader",
    "VideoWriter",
    "partial_paths",
    "plan_output",
    "probe",
]
