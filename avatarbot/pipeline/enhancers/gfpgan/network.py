"""GFPGAN v1.4 generator ("clean" variant: no compiled CUDA ops) as a torch module.

A U-Net encoder turns a degraded 512x512 face into (a) 16 style latents for a StyleGAN2
decoder and (b) per-resolution spatial scale/shift maps that modulate half of the decoder's
channels (SFT). Module names reproduce the official `params_ema` keys exactly
(shared/model-manifests/gfpgan_v1.4.json). Only the inference path is implemented:
latents come straight from `final_linear` (input_is_latent=True), so `style_mlp` is
kept for key compatibility but never called.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


def _channels(narrow: float, channel_multiplier: int) -> dict[int, int]:
    wide = {4: 512, 8: 512, 16: 512, 32: 512}
    scaled = {64: 256, 128: 128, 256: 64, 512: 32, 1024: 16}
    out = {r: int(c * narrow) for r, c in wide.items()}
    out.update({r: int(c * channel_multiplier * narrow) for r, c in scaled.items()})
    return out


def _resize(x: torch.Tensor, factor: float) -> torch.Tensor:
    return F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=False)


class NormStyleCode(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(torch.mean(x**2, dim=1, keepdim=True) + 1e-8)


class ModulatedConv2d(nn.Module):
    """StyleGAN2 conv whose weight is scaled per input channel by the style (and demodulated)."""

    def __init__(
        self, cin: int, cout: int, kernel: int, style_dim: int, demodulate: bool, upsample: bool
    ) -> None:
        super().__init__()
        self.cin, self.cout, self.kernel = cin, cout, kernel
        self.demodulate, self.upsample = demodulate, upsample
        self.modulation = nn.Linear(style_dim, cin, bias=True)
        self.weight = nn.Parameter(
            torch.randn(1, cout, cin, kernel, kernel) / math.sqrt(cin * kernel**2)
        )

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        weight = self.weight * self.modulation(style).view(b, 1, self.cin, 1, 1)
        if self.demodulate:
            weight = weight * torch.rsqrt(weight.pow(2).sum([2, 3, 4]) + 1e-8).view(
                b, self.cout, 1, 1, 1
            )
        if self.upsample:
            x = _resize(x, 2)
        h, w = x.shape[2], x.shape[3]
        # One grouped conv applies each sample's own weights.
        out = F.conv2d(
            x.reshape(1, b * self.cin, h, w),
            weight.reshape(b * self.cout, self.cin, self.kernel, self.kernel),
            padding=self.kernel // 2,
            groups=b,
        )
        return out.reshape(b, self.cout, out.shape[2], out.shape[3])


class StyleConv(nn.Module):
    def __init__(self, cin: int, cout: int, style_dim: int, upsample: bool) -> None:
        super().__init__()
        self.modulated_conv = ModulatedConv2d(cin, cout, 3, style_dim, True, upsample)
        self.weight = nn.Parameter(torch.zeros(1))  # noise strength
        self.bias = nn.Parameter(torch.zeros(1, cout, 1, 1))

    def forward(
        self, x: torch.Tensor, style: torch.Tensor, noise: torch.Tensor | None
    ) -> torch.Tensor:
        out = self.modulated_conv(x, style) * math.sqrt(2.0)
        if noise is None:
            noise = torch.randn_like(out[:, :1])
        out = out + self.weight * noise + self.bias
        return F.leaky_relu(out, 0.2)


class ToRGB(nn.Module):
    def __init__(self, cin: int, style_dim: int, upsample: bool) -> None:
        super().__init__()
        self.upsample = upsample
        self.modulated_conv = ModulatedConv2d(cin, 3, 1, style_dim, False, False)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))

    def forward(
        self, x: torch.Tensor, style: torch.Tensor, skip: torch.Tensor | None
    ) -> torch.Tensor:
        out = self.modulated_conv(x, style) + self.bias
        if skip is not None:
            out = out + (_resize(skip, 2) if self.upsample else skip)
        return out


class ConstantInput(nn.Module):
    def __init__(self, channels: int, size: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(1, channels, size, size))


class StyleGAN2DecoderSFT(nn.Module):
    """StyleGAN2 synthesis; SFT conditions modulate the upper half of each level's channels."""

    def __init__(
        self, out_size: int, style_dim: int, num_mlp: int, channel_multiplier: int, narrow: float
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [NormStyleCode()]
        for _ in range(num_mlp):
            layers += [nn.Linear(style_dim, style_dim), nn.LeakyReLU(0.2)]
        self.style_mlp = nn.Sequential(*layers)
        ch = _channels(narrow, channel_multiplier)
        self.log_size = int(math.log2(out_size))
        self.num_layers = (self.log_size - 2) * 2 + 1
        self.constant_input = ConstantInput(ch[4], 4)
        self.style_conv1 = StyleConv(ch[4], ch[4], style_dim, upsample=False)
        self.to_rgb1 = ToRGB(ch[4], style_dim, upsample=False)
        self.style_convs = nn.ModuleList()
        self.to_rgbs = nn.ModuleList()
        self.noises = nn.Module()
        for idx in range(self.num_layers):
            res = 2 ** ((idx + 5) // 2)
            self.noises.register_buffer(f"noise{idx}", torch.randn(1, 1, res, res))
        cin = ch[4]
        for level in range(3, self.log_size + 1):
            cout = ch[2**level]
            self.style_convs.append(StyleConv(cin, cout, style_dim, upsample=True))
            self.style_convs.append(StyleConv(cout, cout, style_dim, upsample=False))
            self.to_rgbs.append(ToRGB(cout, style_dim, upsample=True))
            cin = cout

    def forward(
        self, latent: torch.Tensor, conditions: list[torch.Tensor], randomize_noise: bool
    ) -> torch.Tensor:
        noise: list[torch.Tensor | None] = (
            [None] * self.num_layers
            if randomize_noise
            else [getattr(self.noises, f"noise{i}") for i in range(self.num_layers)]
        )
        out = self.constant_input.weight.repeat(latent.shape[0], 1, 1, 1)
        out = self.style_conv1(out, latent[:, 0], noise[0])
        skip = self.to_rgb1(out, latent[:, 1], None)
        i = 1
        for level, to_rgb in enumerate(self.to_rgbs):
            out = self.style_convs[2 * level](out, latent[:, i], noise[i])
            if i < len(conditions):
                keep, modulated = torch.split(out, out.size(1) // 2, dim=1)
                modulated = modulated * conditions[i - 1] + conditions[i]
                out = torch.cat([keep, modulated], dim=1)
            out = self.style_convs[2 * level + 1](out, latent[:, i + 1], noise[i + 1])
            skip = to_rgb(out, latent[:, i + 2], skip)
            i += 2
        return skip


class ResBlock(nn.Module):
    """Conv-lrelu, bilinear resample, conv-lrelu, plus a resampled 1x1 skip."""

    def __init__(self, cin: int, cout: int, factor: float) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cin, 3, 1, 1)
        self.conv2 = nn.Conv2d(cin, cout, 3, 1, 1)
        self.skip = nn.Conv2d(cin, cout, 1, bias=False)
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.leaky_relu(self.conv1(x), 0.2)
        out = F.leaky_relu(self.conv2(_resize(out, self.factor)), 0.2)
        return out + self.skip(_resize(x, self.factor))


def _sft_branch(ch: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(ch, ch, 3, 1, 1), nn.LeakyReLU(0.2), nn.Conv2d(ch, ch, 3, 1, 1))


class GFPGANv1Clean(nn.Module):
    """GFPGAN v1.3/v1.4 with the published v1.4 arguments (sft_half, different_w, latent input)."""

    def __init__(
        self,
        out_size: int = 512,
        num_style_feat: int = 512,
        channel_multiplier: int = 2,
        num_mlp: int = 8,
        narrow: float = 1,
    ) -> None:
        super().__init__()
        self.num_style_feat = num_style_feat
        self.log_size = int(math.log2(out_size))
        unet = _channels(narrow * 0.5, channel_multiplier)  # the U-Net uses half the channels
        self.conv_body_first = nn.Conv2d(3, unet[out_size], 1)
        self.conv_body_down = nn.ModuleList(
            ResBlock(unet[2**lvl], unet[2 ** (lvl - 1)], 0.5) for lvl in range(self.log_size, 2, -1)
        )
        self.final_conv = nn.Conv2d(unet[8], unet[4], 3, 1, 1)
        self.conv_body_up = nn.ModuleList(
            ResBlock(unet[2 ** (lvl - 1)], unet[2**lvl], 2) for lvl in range(3, self.log_size + 1)
        )
        self.toRGB = nn.ModuleList(
            nn.Conv2d(unet[2**lvl], 3, 1) for lvl in range(3, self.log_size + 1)
        )
        self.final_linear = nn.Linear(unet[4] * 16, (self.log_size * 2 - 2) * num_style_feat)
        self.stylegan_decoder = StyleGAN2DecoderSFT(
            out_size, num_style_feat, num_mlp, channel_multiplier, narrow
        )
        self.condition_scale = nn.ModuleList(
            _sft_branch(unet[2**lvl]) for lvl in range(3, self.log_size + 1)
        )
        self.condition_shift = nn.ModuleList(
            _sft_branch(unet[2**lvl]) for lvl in range(3, self.log_size + 1)
        )

    def forward(self, x: torch.Tensor, randomize_noise: bool = False) -> torch.Tensor:
        """(B,3,512,512) RGB in [-1,1] -> restored (B,3,512,512) RGB, nominally [-1,1], unclamped.

        randomize_noise=False uses the stored noise maps: video frames then do not flicker.
        """
        feat = F.leaky_relu(self.conv_body_first(x), 0.2)
        skips = []
        for block in self.conv_body_down:
            feat = block(feat)
            skips.insert(0, feat)
        feat = F.leaky_relu(self.final_conv(feat), 0.2)
        latent = self.final_linear(feat.flatten(1)).view(feat.size(0), -1, self.num_style_feat)
        conditions = []
        for i, up in enumerate(self.conv_body_up):
            feat = up(feat + skips[i])
            conditions.append(self.condition_scale[i](feat))
            conditions.append(self.condition_shift[i](feat))
        return self.stylegan_decoder(latent, conditions, randomize_noise)
