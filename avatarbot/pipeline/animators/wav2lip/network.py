"""The published Wav2Lip generator (Prajwal et al. 2020) as a torch module.

Module and attribute names reproduce the official `state_dict` keys exactly
(see shared/model-manifests/wav2lip.json), so the released `wav2lip.pth` /
`wav2lip_gan.pth` load with strict=True. Imported lazily: torch is optional.
"""

from __future__ import annotations

import torch
from torch import nn


class ConvBnRelu(nn.Module):
    """Conv + BatchNorm (`conv_block.0/1`), optional identity residual, then ReLU (`act`)."""

    def __init__(
        self,
        cin: int,
        cout: int,
        kernel_size: int,
        stride: int | tuple[int, int],
        padding: int,
        residual: bool = False,
    ) -> None:
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.Conv2d(cin, cout, kernel_size, stride, padding), nn.BatchNorm2d(cout)
        )
        self.act = nn.ReLU()
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv_block(x)
        if self.residual:
            out = out + x
        return self.act(out)


class DeconvBnRelu(nn.Module):
    """Transposed conv + BatchNorm + ReLU, used to upsample in the face decoder."""

    def __init__(
        self,
        cin: int,
        cout: int,
        kernel_size: int,
        stride: int,
        padding: int,
        output_padding: int = 0,
    ) -> None:
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.ConvTranspose2d(cin, cout, kernel_size, stride, padding, output_padding),
            nn.BatchNorm2d(cout),
        )
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv_block(x))


def _res(ch: int) -> ConvBnRelu:
    return ConvBnRelu(ch, ch, 3, 1, 1, residual=True)


def _down(cin: int, cout: int, n_res: int) -> nn.Sequential:
    return nn.Sequential(ConvBnRelu(cin, cout, 3, 2, 1), *[_res(cout) for _ in range(n_res)])


def _up(cin: int, cout: int, n_res: int) -> nn.Sequential:
    return nn.Sequential(
        DeconvBnRelu(cin, cout, 3, 2, 1, output_padding=1), *[_res(cout) for _ in range(n_res)]
    )


class Wav2Lip(nn.Module):
    """(mel (B,1,80,16), face (B,6,96,96) in [0,1] BGR) -> lip-synced face (B,3,96,96)."""

    def __init__(self) -> None:
        super().__init__()
        # U-Net encoder over the masked + reference face; spatial 96 -> 1.
        self.face_encoder_blocks = nn.ModuleList(
            [
                nn.Sequential(ConvBnRelu(6, 16, 7, 1, 3)),  # 96
                _down(16, 32, 2),  # 48
                _down(32, 64, 3),  # 24
                _down(64, 128, 2),  # 12
                _down(128, 256, 2),  # 6
                _down(256, 512, 1),  # 3
                nn.Sequential(ConvBnRelu(512, 512, 3, 1, 0), ConvBnRelu(512, 512, 1, 1, 0)),  # 1
            ]
        )
        # Mel window 80x16 -> 512-d embedding (1x1 spatial).
        self.audio_encoder = nn.Sequential(
            ConvBnRelu(1, 32, 3, 1, 1),
            _res(32),
            _res(32),
            ConvBnRelu(32, 64, 3, (3, 1), 1),
            _res(64),
            _res(64),
            ConvBnRelu(64, 128, 3, 3, 1),
            _res(128),
            _res(128),
            ConvBnRelu(128, 256, 3, (3, 2), 1),
            _res(256),
            ConvBnRelu(256, 512, 3, 1, 0),
            ConvBnRelu(512, 512, 1, 1, 0),
        )
        # Decoder: each stage output is concatenated with the matching encoder skip.
        self.face_decoder_blocks = nn.ModuleList(
            [
                nn.Sequential(ConvBnRelu(512, 512, 1, 1, 0)),  # 1
                nn.Sequential(DeconvBnRelu(1024, 512, 3, 1, 0), _res(512)),  # 3
                _up(1024, 512, 2),  # 6
                _up(768, 384, 2),  # 12
                _up(512, 256, 2),  # 24
                _up(320, 128, 2),  # 48
                _up(160, 64, 2),  # 96
            ]
        )
        self.output_block = nn.Sequential(
            ConvBnRelu(80, 32, 3, 1, 1), nn.Conv2d(32, 3, 1, 1, 0), nn.Sigmoid()
        )

    def forward(self, audio_sequences: torch.Tensor, face_sequences: torch.Tensor) -> torch.Tensor:
        # Training feeds 5-D (B, T, ...) windows; fold T into the batch like the original.
        is_5d = face_sequences.dim() > 4
        batch = audio_sequences.size(0)
        if is_5d:
            steps = audio_sequences.size(1)
            audio_sequences = torch.cat([audio_sequences[:, i] for i in range(steps)], dim=0)
            face_sequences = torch.cat(
                [face_sequences[:, :, i] for i in range(face_sequences.size(2))], dim=0
            )
        x = self.audio_encoder(audio_sequences)
        skips = []
        feat = face_sequences
        for block in self.face_encoder_blocks:
            feat = block(feat)
            skips.append(feat)
        for block in self.face_decoder_blocks:
            x = block(x)
            x = torch.cat((x, skips.pop()), dim=1)
        out = self.output_block(x)
        if is_5d:
            out = torch.stack(torch.split(out, batch, dim=0), dim=2)
        return out
