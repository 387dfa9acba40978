/** The named sizes, from fal.ai's image_size presets, which the seed's names come from. */
export const IMAGE_SIZE_PRESETS = {
  square_hd: { width: 1024, height: 1024 },
  square: { width: 512, height: 512 },
  portrait_4_3: { width: 768, height: 1024 },
  portrait_16_9: { width: 576, height: 1024 },
  landscape_4_3: { width: 1024, height: 768 },
  landscape_16_9: { width: 1024, height: 576 },
} as const;

export type ImageSizePreset = keyof typeof IMAGE_SIZE_PRESETS;
export const DEFAULT_IMAGE_SIZE: ImageSizePreset = 'landscape_4_3';
