/**
 * The key-derived tile: a square of `tileCells`×`tileCells` cells, repeated over the whole image.
 * A fixed subset of cells are pilots (known ±1 chips, used to find the tile's position and scale);
 * every other cell carries one coded bit multiplied by its own key chip (spread spectrum), and each
 * coded bit is spread over several cells far apart in the tile (interleaving against local damage).
 */
import { createRandom, hashString32, shuffledIndices } from './prng.ts';

export interface TileLayout {
  /** Cells per tile side. */
  tileCells: number;
  /** Cell index (row * tileCells + col) of every pilot cell. */
  pilotCells: Int32Array;
  /** ±1 chip of each pilot cell. */
  pilotChips: Int8Array;
  /** Cell index of every data cell. */
  dataCells: Int32Array;
  /** ±1 spreading chip of each data cell. */
  dataChips: Int8Array;
  /** Coded-bit index carried by each data cell. */
  dataBits: Int32Array;
  codedBits: number;
}

/**
 * Pilots are drawn so that each of the four (row mod 2, col mod 2) cell classes holds the same number
 * of pilots with as many +1 as -1 chips: a disturbance that repeats every one or two cells (JPEG's
 * 8-pixel block grid at common scales) then has zero correlation with the pilot pattern.
 */
export function buildTileLayout(key: string, tileCells: number, pilotCount: number, codedBits: number): TileLayout {
  const cells = tileCells * tileCells;
  if (tileCells % 2 !== 0 || pilotCount % 8 !== 0) throw new RangeError('tileCells must be even and pilotCount a multiple of 8');
  if (cells - pilotCount < codedBits) throw new RangeError('not enough data cells for the coded bits');
  const random = createRandom(hashString32(`${key}/tile-layout`));
  const isPilot = new Uint8Array(cells);
  const pilotCells: number[] = [];
  const pilotChips: number[] = [];
  const perClass = pilotCount / 4;
  for (let cls = 0; cls < 4; cls++) {
    const members: number[] = [];
    for (let row = cls >> 1; row < tileCells; row += 2) {
      for (let col = cls & 1; col < tileCells; col += 2) members.push(row * tileCells + col);
    }
    const order = shuffledIndices(members.length, random);
    const signs = shuffledIndices(perClass, random);
    for (let k = 0; k < perClass; k++) {
      const cell = members[order[k]!]!;
      isPilot[cell] = 1;
      pilotCells.push(cell);
      pilotChips.push(signs[k]! < perClass / 2 ? 1 : -1);
    }
  }
  const dataCells: number[] = [];
  for (let cell = 0; cell < cells; cell++) if (!isPilot[cell]) dataCells.push(cell);
  const dataOrder = shuffledIndices(dataCells.length, random);
  const shuffledData = Int32Array.from(dataOrder, (i) => dataCells[i]!);
  const dataChips = new Int8Array(shuffledData.length);
  const dataBits = new Int32Array(shuffledData.length);
  for (let k = 0; k < shuffledData.length; k++) {
    dataChips[k] = random() < 0.5 ? -1 : 1;
    // Cells are in shuffled order, so consecutive k are far apart in the tile. floor(k·coded/data)
    // gives every coded bit floor or ceil(data/coded) cells, with the ones that get an extra cell
    // spread evenly along the codeword (not bunched at its start, which would leave the tail and the
    // CRC weaker).
    dataBits[k] = Math.floor((k * codedBits) / shuffledData.length);
  }
  return {
    tileCells,
    pilotCells: Int32Array.from(pilotCells),
    pilotChips: Int8Array.from(pilotChips),
    dataCells: shuffledData,
    dataChips,
    dataBits,
    codedBits,
  };
}

/** The ±1 value of every tile cell for a coded word (row-major, tileCells²). */
export function tileChips(layout: TileLayout, coded: Uint8Array): Float32Array {
  const chips = new Float32Array(layout.tileCells * layout.tileCells);
  for (let k = 0; k < layout.pilotCells.length; k++) chips[layout.pilotCells[k]!] = layout.pilotChips[k]!;
  for (let k = 0; k < layout.dataCells.length; k++) {
    chips[layout.dataCells[k]!] = layout.dataChips[k]! * (coded[layout.dataBits[k]!] ? 1 : -1);
  }
  return chips;
}
