//! Geo commands (GEOADD, GEOPOS, GEODIST, GEOHASH, GEOSEARCH, GEOSEARCHSTORE, GEORADIUS,
//! GEORADIUSBYMEMBER and the _RO forms) over sorted sets whose scores are 52-bit geohashes,
//! as Redis 7.0's geo.c, geohash.c and geohash_helper.c: the same encoding, search cells,
//! floating-point steps and reply formats, so positions, distances and the order of replies
//! match Redis digit for digit.

use std::cmp::Ordering;

use super::{event, int_arg, is, zsets, CmdError, CmdResult, Ctx};
use crate::keyspace::{Blob, Scored, Value, ZSet};
use crate::protocol::Reply;

const STEP_MAX: u32 = 26;
const LAT_MIN: f64 = -85.05112878;
const LAT_MAX: f64 = 85.05112878;
const LONG_MIN: f64 = -180.0;
const LONG_MAX: f64 = 180.0;
const EARTH_RADIUS: f64 = 6372797.560856;
const MERCATOR_MAX: f64 = 20037726.37;
const D_R: f64 = std::f64::consts::PI / 180.0;

#[derive(Debug, Clone, Copy)]
struct Range {
    min: f64,
    max: f64,
}

const WGS84_LONG: Range = Range {
    min: LONG_MIN,
    max: LONG_MAX,
};
const WGS84_LAT: Range = Range {
    min: LAT_MIN,
    max: LAT_MAX,
};

/// A geohash cell: `step` bits per axis, interleaved (latitude on even bits). Step 0 marks
/// a neighbour left out of a search.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Cell {
    bits: u64,
    step: u32,
}

const NO_CELL: Cell = Cell { bits: 0, step: 0 };

/// A cell's rectangle.
#[derive(Debug, Clone, Copy)]
struct Area {
    lon: Range,
    lat: Range,
}

fn deg_rad(a: f64) -> f64 {
    a * D_R
}

fn rad_deg(a: f64) -> f64 {
    a / D_R
}

/// Spreads the 32 bits of `v` onto the even bits of a u64.
fn spread(v: u32) -> u64 {
    let mut x = u64::from(v);
    x = (x | (x << 16)) & 0x0000_ffff_0000_ffff;
    x = (x | (x << 8)) & 0x00ff_00ff_00ff_00ff;
    x = (x | (x << 4)) & 0x0f0f_0f0f_0f0f_0f0f;
    x = (x | (x << 2)) & 0x3333_3333_3333_3333;
    (x | (x << 1)) & 0x5555_5555_5555_5555
}

/// Gathers the even bits of `x` into a u32 (the inverse of `spread`).
fn squash(x: u64) -> u32 {
    let mut x = x & 0x5555_5555_5555_5555;
    x = (x | (x >> 1)) & 0x3333_3333_3333_3333;
    x = (x | (x >> 2)) & 0x0f0f_0f0f_0f0f_0f0f;
    x = (x | (x >> 4)) & 0x00ff_00ff_00ff_00ff;
    x = (x | (x >> 8)) & 0x0000_ffff_0000_ffff;
    ((x | (x >> 16)) & 0x0000_0000_ffff_ffff) as u32
}

fn interleave(lat: u32, lon: u32) -> u64 {
    spread(lat) | (spread(lon) << 1)
}

/// (latitude index, longitude index).
fn deinterleave(bits: u64) -> (u32, u32) {
    (squash(bits), squash(bits >> 1))
}

fn valid_coordinates(lon: f64, lat: f64) -> bool {
    (LONG_MIN..=LONG_MAX).contains(&lon) && (LAT_MIN..=LAT_MAX).contains(&lat)
}

fn encode(long_range: Range, lat_range: Range, lon: f64, lat: f64, step: u32) -> Option<Cell> {
    if step == 0 || step > 32 || !valid_coordinates(lon, lat) {
        return None;
    }
    if lat < lat_range.min || lat > lat_range.max || lon < long_range.min || lon > long_range.max {
        return None;
    }
    let scale = (1u64 << step) as f64;
    let lat_offset = (lat - lat_range.min) / (lat_range.max - lat_range.min) * scale;
    let lon_offset = (lon - long_range.min) / (long_range.max - long_range.min) * scale;
    Some(Cell {
        bits: interleave(lat_offset as u32, lon_offset as u32),
        step,
    })
}

fn decode(long_range: Range, lat_range: Range, cell: Cell) -> Area {
    let (lat_idx, lon_idx) = deinterleave(cell.bits);
    let cells = (1u64 << cell.step) as f64;
    let axis = |range: Range, idx: u32| {
        let scale = range.max - range.min;
        Range {
            min: range.min + (f64::from(idx) * 1.0 / cells) * scale,
            max: range.min + (f64::from(idx.wrapping_add(1)) * 1.0 / cells) * scale,
        }
    };
    Area {
        lon: axis(long_range, lon_idx),
        lat: axis(lat_range, lat_idx),
    }
}

/// A stored score as the u64 geohash it holds, converted as x86-64 C converts a double.
fn score_bits(score: f64) -> u64 {
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    let truncate = |x: f64| {
        if x.is_nan() || !(-TWO_63..TWO_63).contains(&x) {
            i64::MIN
        } else {
            x as i64
        }
    };
    if score >= TWO_63 {
        (truncate(score - TWO_63) as u64) ^ (1 << 63)
    } else {
        truncate(score) as u64
    }
}

/// A score's position: the centre of its cell, clamped to the valid coordinates.
fn position(score: f64) -> (f64, f64) {
    let area = decode(
        WGS84_LONG,
        WGS84_LAT,
        Cell {
            bits: score_bits(score),
            step: STEP_MAX,
        },
    );
    let lon = ((area.lon.min + area.lon.max) / 2.0).clamp(LONG_MIN, LONG_MAX);
    let lat = ((area.lat.min + area.lat.max) / 2.0).clamp(LAT_MIN, LAT_MAX);
    (lon, lat)
}

fn lat_distance(lat1: f64, lat2: f64) -> f64 {
    EARTH_RADIUS * (deg_rad(lat2) - deg_rad(lat1)).abs()
}

/// Haversine distance in meters, in Redis's order of operations.
fn distance(lon1: f64, lat1: f64, lon2: f64, lat2: f64) -> f64 {
    let (lon1r, lon2r) = (deg_rad(lon1), deg_rad(lon2));
    let v = ((lon2r - lon1r) / 2.0).sin();
    if v == 0.0 {
        return lat_distance(lat1, lat2);
    }
    let (lat1r, lat2r) = (deg_rad(lat1), deg_rad(lat2));
    let u = ((lat2r - lat1r) / 2.0).sin();
    let a = u * u + lat1r.cos() * lat2r.cos() * v * v;
    2.0 * EARTH_RADIUS * a.sqrt().asin()
}

/// Moves a cell one step along an axis (latitude if `lat`), wrapping around.
fn shifted(cell: Cell, dlon: i32, dlat: i32) -> Cell {
    let (lat, lon) = deinterleave(cell.bits);
    let mask = ((1u64 << cell.step) - 1) as u32;
    let lat = lat.wrapping_add_signed(dlat) & mask;
    let lon = lon.wrapping_add_signed(dlon) & mask;
    Cell {
        bits: interleave(lat, lon),
        step: cell.step,
    }
}

/// The cell and its neighbours in Redis's scan order: centre, N, S, E, W, NE, NW, SE, SW.
fn with_neighbours(cell: Cell) -> [Cell; 9] {
    [
        cell,
        shifted(cell, 0, 1),
        shifted(cell, 0, -1),
        shifted(cell, 1, 0),
        shifted(cell, -1, 0),
        shifted(cell, 1, 1),
        shifted(cell, -1, 1),
        shifted(cell, 1, -1),
        shifted(cell, -1, -1),
    ]
}

/// What a search covers.
#[derive(Debug, Clone, Copy)]
enum Shape {
    Radius(f64),
    Box { width: f64, height: f64 },
}

#[derive(Debug, Clone, Copy)]
struct Search {
    lon: f64,
    lat: f64,
    shape: Shape,
    /// Meters per unit.
    unit: f64,
}

fn estimate_steps(mut range: f64, lat: f64) -> u32 {
    if range == 0.0 {
        return STEP_MAX;
    }
    let mut step: i32 = 1;
    while range < MERCATOR_MAX {
        range *= 2.0;
        step += 1;
    }
    step -= 2;
    if !(-66.0..=66.0).contains(&lat) {
        step -= 1;
        if !(-80.0..=80.0).contains(&lat) {
            step -= 1;
        }
    }
    step.clamp(1, STEP_MAX as i32) as u32
}

impl Search {
    /// [min_lon, min_lat, max_lon, max_lat] around the centre.
    fn bounds(&self) -> [f64; 4] {
        let (height, width) = match self.shape {
            Shape::Radius(r) => (self.unit * r, self.unit * r),
            Shape::Box { width, height } => (self.unit * (height / 2.0), self.unit * (width / 2.0)),
        };
        let lat_delta = rad_deg(height / EARTH_RADIUS);
        let top = rad_deg(width / EARTH_RADIUS / deg_rad(self.lat + lat_delta).cos());
        let bottom = rad_deg(width / EARTH_RADIUS / deg_rad(self.lat - lat_delta).cos());
        let lon_delta = if self.lat < 0.0 { bottom } else { top };
        [
            self.lon - lon_delta,
            self.lat - lat_delta,
            self.lon + lon_delta,
            self.lat + lat_delta,
        ]
    }

    /// The cells to scan, as Redis's geohashCalculateAreasByShapeWGS84 picks them.
    fn cells(&self) -> [Cell; 9] {
        let [min_lon, min_lat, max_lon, max_lat] = self.bounds();
        let radius = match self.shape {
            Shape::Radius(r) => r,
            Shape::Box { width, height } => {
                ((width / 2.0) * (width / 2.0) + (height / 2.0) * (height / 2.0)).sqrt()
            }
        } * self.unit;
        let mut steps = estimate_steps(radius, self.lat);
        let around = |steps| {
            let centre = encode(WGS84_LONG, WGS84_LAT, self.lon, self.lat, steps).unwrap_or(Cell {
                bits: 0,
                step: steps,
            });
            with_neighbours(centre)
        };
        let mut cells = around(steps);
        let area_of = |cell| decode(WGS84_LONG, WGS84_LAT, cell);
        let decrease = area_of(cells[1]).lat.max < max_lat
            || area_of(cells[2]).lat.min > min_lat
            || area_of(cells[3]).lon.max < max_lon
            || area_of(cells[4]).lon.min > min_lon;
        if steps > 1 && decrease {
            steps -= 1;
            cells = around(steps);
        }
        if steps >= 2 {
            let area = area_of(cells[0]);
            let mut drop = |indices: [usize; 3]| indices.iter().for_each(|&i| cells[i] = NO_CELL);
            if area.lat.min < min_lat {
                drop([2, 8, 7]);
            }
            if area.lat.max > max_lat {
                drop([1, 5, 6]);
            }
            if area.lon.min < min_lon {
                drop([4, 8, 6]);
            }
            if area.lon.max > max_lon {
                drop([3, 7, 5]);
            }
        }
        cells
    }

    /// The distance in meters to a point, if the point is inside.
    fn reaches(&self, lon: f64, lat: f64) -> Option<f64> {
        match self.shape {
            Shape::Radius(r) => {
                let d = distance(self.lon, self.lat, lon, lat);
                (d <= r * self.unit).then_some(d)
            }
            Shape::Box { width, height } => {
                if lat_distance(lat, self.lat) > height * self.unit / 2.0 {
                    return None;
                }
                if distance(lon, lat, self.lon, lat) > width * self.unit / 2.0 {
                    return None;
                }
                Some(distance(self.lon, self.lat, lon, lat))
            }
        }
    }
}

/// One member a search found.
#[derive(Debug, Clone)]
struct Hit {
    member: Blob,
    score: f64,
    lon: f64,
    lat: f64,
    /// Meters from the centre.
    dist: f64,
}

/// Scans a sorted set's members in the search's cells, in Redis's order; stops at `limit`
/// hits (COUNT ANY) if nonzero.
fn scan(zset: &ZSet, search: &Search, limit: usize) -> Vec<Hit> {
    let cells = search.cells();
    let mut hits = Vec::new();
    let mut last = 0;
    for (i, &cell) in cells.iter().enumerate() {
        if cell == NO_CELL || (last != 0 && cell == cells[last]) {
            continue;
        }
        if limit != 0 && hits.len() >= limit {
            break;
        }
        let shift = 52 - 2 * cell.step;
        let probe = |bits: u64| Scored {
            score: (bits << shift) as f64,
            member: Blob::new(),
        };
        for s in zset.ordered.range(probe(cell.bits)..probe(cell.bits + 1)) {
            let (lon, lat) = position(s.score);
            if let Some(dist) = search.reaches(lon, lat) {
                hits.push(Hit {
                    member: s.member.clone(),
                    score: s.score,
                    lon,
                    lat,
                    dist,
                });
            }
            if limit != 0 && hits.len() >= limit {
                break;
            }
        }
        last = i;
    }
    hits
}

/// A coordinate as Redis's addReplyHumanLongDouble writes it: 17 decimals, trailing zeros cut.
fn human(x: f64) -> String {
    let mut text = format!("{x:.17}");
    if text.contains('.') {
        let trimmed = text.trim_end_matches('0').trim_end_matches('.').len();
        text.truncate(trimmed);
    }
    if text == "-0" {
        text = "0".into();
    }
    text
}

fn coordinates_reply(lon: f64, lat: f64) -> Reply {
    Reply::Array(vec![
        Reply::DoubleText(human(lon)),
        Reply::DoubleText(human(lat)),
    ])
}

/// A distance as Redis writes it: rounded to 4 decimals through an integer of 1/10000ths.
fn distance_text(d: f64) -> String {
    if d == 0.0 {
        return "0.0000".into();
    }
    let scaled = d * 10000.0;
    let n = if scaled.is_nan()
        || !(-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&scaled)
    {
        i64::MIN
    } else {
        scaled.round_ties_even() as i64
    };
    let magnitude = n.unsigned_abs();
    let sign = if n < 0 { "-" } else { "" };
    format!("{sign}{}.{:04}", magnitude / 10000, magnitude % 10000)
}

fn distance_reply(d: f64) -> Reply {
    Reply::bulk(distance_text(d))
}

/// A coordinate or size argument, read as Redis's strtod-based string2d.
fn number(arg: &[u8]) -> Option<f64> {
    crate::util::parse_f64(arg)
}

fn lon_lat(lon: &[u8], lat: &[u8]) -> Result<(f64, f64), CmdError> {
    let lon = number(lon).ok_or(CmdError::NotFloat)?;
    let lat = number(lat).ok_or(CmdError::NotFloat)?;
    if !valid_coordinates(lon, lat) {
        return Err(CmdError::other(format!(
            "invalid longitude,latitude pair {lon:.6},{lat:.6}"
        )));
    }
    Ok((lon, lat))
}

fn unit(arg: &[u8]) -> Result<f64, CmdError> {
    [("m", 1.0), ("km", 1000.0), ("ft", 0.3048), ("mi", 1609.34)]
        .into_iter()
        .find(|(name, _)| is(arg, name))
        .map(|(_, meters)| meters)
        .ok_or_else(|| CmdError::other("unsupported unit provided. please use M, KM, FT, MI"))
}

/// A radius and its unit.
fn radius(value: &[u8], unit_arg: &[u8]) -> Result<(f64, f64), CmdError> {
    let r = number(value).ok_or_else(|| CmdError::other("need numeric radius"))?;
    if r < 0.0 {
        return Err(CmdError::other("radius cannot be negative"));
    }
    Ok((r, unit(unit_arg)?))
}

pub fn geoadd(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let mut first = 2;
    let (mut nx, mut xx) = (false, false);
    while let Some(a) = args.get(first) {
        if is(a, "NX") {
            nx = true;
        } else if is(a, "XX") {
            xx = true;
        } else if !is(a, "CH") {
            break;
        }
        first += 1;
    }
    if !(args.len() - first).is_multiple_of(3) || (nx && xx) {
        return Err(CmdError::Syntax);
    }
    let mut scores = Vec::with_capacity((args.len() - first) / 3);
    for triple in args[first..].chunks(3) {
        let (lon, lat) = lon_lat(triple[0], triple[1])?;
        let bits = encode(WGS84_LONG, WGS84_LAT, lon, lat, STEP_MAX).map_or(0, |c| c.bits);
        scores.push(bits.to_string());
    }
    if scores.is_empty() {
        return Err(CmdError::Syntax);
    }
    // Run as the ZADD it stands for, and logged as that ZADD, as Redis rewrites it.
    let mut zadd: Vec<&[u8]> = vec![b"zadd", args[1]];
    zadd.extend_from_slice(&args[2..first]);
    for (triple, score) in args[first..].chunks(3).zip(&scores) {
        zadd.push(score.as_bytes());
        zadd.push(triple[2]);
    }
    let dirty = ctx.ks.dirty;
    let reply = zsets::zadd(ctx, &zadd)?;
    if ctx.ks.dirty != dirty && ctx.aof_on() {
        ctx.propagate(&zadd);
    }
    Ok(reply)
}

/// Each member's score in a geo set (None for a missing member or key).
fn member_scores(
    ctx: &mut Ctx,
    key: &[u8],
    members: &[&[u8]],
) -> Result<Vec<Option<f64>>, CmdError> {
    let zset = ctx.read::<ZSet>(key)?;
    Ok(members
        .iter()
        .map(|m| zset.and_then(|z| z.score(m)))
        .collect())
}

pub fn geopos(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let scores = member_scores(ctx, args[1], &args[2..])?;
    Ok(Reply::Array(
        scores
            .into_iter()
            .map(|s| {
                s.map_or(Reply::NullArray, |s| {
                    let (lon, lat) = position(s);
                    coordinates_reply(lon, lat)
                })
            })
            .collect(),
    ))
}

/// The standard 11-character geohash of a stored score.
fn geohash_text(score: f64) -> String {
    const ALPHABET: &[u8; 32] = b"0123456789bcdefghjkmnpqrstuvwxyz";
    let (lon, lat) = position(score);
    let standard_lat = Range {
        min: -90.0,
        max: 90.0,
    };
    let bits = encode(WGS84_LONG, standard_lat, lon, lat, STEP_MAX).map_or(0, |c| c.bits);
    let mut text: String = (0..10)
        .map(|i| char::from(ALPHABET[((bits >> (52 - (i + 1) * 5)) & 0x1f) as usize]))
        .collect();
    text.push('0');
    text
}

pub fn geohash(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let scores = member_scores(ctx, args[1], &args[2..])?;
    Ok(Reply::Array(
        scores
            .into_iter()
            .map(|s| s.map_or(Reply::Null, |s| Reply::bulk(geohash_text(s))))
            .collect(),
    ))
}

pub fn geodist(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let meters = match args.len() {
        4 => 1.0,
        5 => unit(args[4])?,
        _ => return Err(CmdError::Syntax),
    };
    let scores = member_scores(ctx, args[1], &args[2..4])?;
    let (Some(a), Some(b)) = (scores[0], scores[1]) else {
        return Ok(Reply::Null);
    };
    let ((lon1, lat1), (lon2, lat2)) = (position(a), position(b));
    Ok(distance_reply(distance(lon1, lat1, lon2, lat2) / meters))
}

/// Which search command runs: where its arguments are and what it may do.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Form {
    Radius { store: bool },
    RadiusByMember { store: bool },
    Search,
    SearchStore,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Sort {
    None,
    Asc,
    Desc,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Center {
    Unset,
    At(f64, f64),
    /// FROMMEMBER on a missing key: nothing to look up, the search finds nothing.
    OfMissingKey,
}

/// The parsed options of a search.
struct Options<'a> {
    center: Center,
    by: Option<(Shape, f64)>,
    with_dist: bool,
    with_hash: bool,
    with_coord: bool,
    any: bool,
    count: usize,
    sort: Sort,
    store: Option<&'a [u8]>,
    store_dist: bool,
}

/// The position of a member of the source, for FROMMEMBER and GEORADIUSBYMEMBER.
fn member_center(zset: Option<&ZSet>, member: &[u8]) -> Result<Center, CmdError> {
    match zset {
        None => Ok(Center::OfMissingKey),
        Some(z) => z
            .score(member)
            .map(|s| {
                let (lon, lat) = position(s);
                Center::At(lon, lat)
            })
            .ok_or_else(|| CmdError::other("could not decode requested zset member")),
    }
}

fn parse_search<'a>(
    args: &[&'a [u8]],
    form: Form,
    zset: Option<&ZSet>,
) -> Result<Options<'a>, CmdError> {
    let mut o = Options {
        center: Center::Unset,
        by: None,
        with_dist: false,
        with_hash: false,
        with_coord: false,
        any: false,
        count: 0,
        sort: Sort::None,
        store: None,
        store_dist: false,
    };
    let base = match form {
        Form::Radius { .. } => {
            let (lon, lat) = lon_lat(args[2], args[3])?;
            o.center = Center::At(lon, lat);
            let (r, meters) = radius(args[4], args[5])?;
            o.by = Some((Shape::Radius(r), meters));
            6
        }
        Form::RadiusByMember { .. } => {
            if zset.is_some() {
                o.center = member_center(zset, args[2])?;
                let (r, meters) = radius(args[3], args[4])?;
                o.by = Some((Shape::Radius(r), meters));
            } else {
                o.center = Center::OfMissingKey;
            }
            5
        }
        Form::Search => 2,
        Form::SearchStore => {
            o.store = Some(args[1]);
            3
        }
    };
    let searching = matches!(form, Form::Search | Form::SearchStore);
    let may_store = matches!(
        form,
        Form::Radius { store: true } | Form::RadiusByMember { store: true }
    );
    let (mut from_member, mut from_lonlat) = (false, false);
    let (mut by_radius, mut by_box) = (false, false);
    let mut i = base;
    while i < args.len() {
        let (a, left) = (args[i], args.len() - i - 1);
        if is(a, "WITHDIST") {
            o.with_dist = true;
        } else if is(a, "WITHHASH") {
            o.with_hash = true;
        } else if is(a, "WITHCOORD") {
            o.with_coord = true;
        } else if is(a, "ANY") {
            o.any = true;
        } else if is(a, "ASC") {
            o.sort = Sort::Asc;
        } else if is(a, "DESC") {
            o.sort = Sort::Desc;
        } else if is(a, "COUNT") && left >= 1 {
            let n = int_arg(args[i + 1])?;
            if n <= 0 {
                return Err(CmdError::other("COUNT must be > 0"));
            }
            o.count = n as usize;
            i += 1;
        } else if may_store && (is(a, "STORE") || is(a, "STOREDIST")) && left >= 1 {
            o.store = Some(args[i + 1]);
            o.store_dist = is(a, "STOREDIST");
            i += 1;
        } else if form == Form::SearchStore && is(a, "STOREDIST") {
            o.store_dist = true;
        } else if searching && is(a, "FROMMEMBER") && left >= 1 && !from_lonlat {
            o.center = member_center(zset, args[i + 1])?;
            from_member = true;
            i += 1;
        } else if searching && is(a, "FROMLONLAT") && left >= 2 && !from_member {
            let (lon, lat) = lon_lat(args[i + 1], args[i + 2])?;
            o.center = Center::At(lon, lat);
            from_lonlat = true;
            i += 2;
        } else if searching && is(a, "BYRADIUS") && left >= 2 && !by_box {
            let (r, meters) = radius(args[i + 1], args[i + 2])?;
            o.by = Some((Shape::Radius(r), meters));
            by_radius = true;
            i += 2;
        } else if searching && is(a, "BYBOX") && left >= 3 && !by_radius {
            let width = number(args[i + 1]).ok_or_else(|| CmdError::other("need numeric width"))?;
            let height =
                number(args[i + 2]).ok_or_else(|| CmdError::other("need numeric height"))?;
            if height < 0.0 || width < 0.0 {
                return Err(CmdError::other("height or width cannot be negative"));
            }
            o.by = Some((Shape::Box { width, height }, unit(args[i + 3])?));
            by_box = true;
            i += 3;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    if o.store.is_some() && (o.with_dist || o.with_hash || o.with_coord) {
        return Err(CmdError::other(if form == Form::SearchStore {
            "GEOSEARCHSTORE is not compatible with WITHDIST, WITHHASH and WITHCOORD options"
        } else {
            "STORE option in GEORADIUS is not compatible with WITHDIST, WITHHASH and WITHCOORD options"
        }));
    }
    let name = String::from_utf8_lossy(args[0]);
    if searching && o.center == Center::Unset {
        return Err(CmdError::other(format!(
            "exactly one of FROMMEMBER or FROMLONLAT can be specified for {name}"
        )));
    }
    if searching && !by_radius && !by_box {
        return Err(CmdError::other(format!(
            "exactly one of BYRADIUS and BYBOX can be specified for {name}"
        )));
    }
    if o.any && o.count == 0 {
        return Err(CmdError::other("the ANY argument requires COUNT argument"));
    }
    Ok(o)
}

fn search_generic(ctx: &mut Ctx, args: &[&[u8]], form: Form) -> CmdResult {
    let source = if form == Form::SearchStore {
        args[2]
    } else {
        args[1]
    };
    let zset = ctx.read_source::<ZSet>(source)?;
    let o = parse_search(args, form, zset)?;
    let (Some(zset), Center::At(lon, lat), Some((shape, unit))) = (zset, o.center, o.by) else {
        return finish_empty(ctx, o.store, form);
    };
    let search = Search {
        lon,
        lat,
        shape,
        unit,
    };
    let sort = match o.sort {
        Sort::None if o.count != 0 && !o.any => Sort::Asc,
        sort => sort,
    };
    let mut hits = scan(zset, &search, if o.any { o.count } else { 0 });
    if hits.is_empty() && o.store.is_none() {
        return Ok(Reply::Array(Vec::new()));
    }
    let returned = if o.count == 0 || hits.len() < o.count {
        hits.len()
    } else {
        o.count
    };
    if sort != Sort::None {
        let compare = |a: &Hit, b: &Hit| {
            let order = if a.dist > b.dist {
                Ordering::Greater
            } else if a.dist == b.dist {
                Ordering::Equal
            } else {
                Ordering::Less
            };
            if sort == Sort::Desc {
                order.reverse()
            } else {
                order
            }
        };
        if returned == hits.len() {
            hits.sort_by(compare);
        } else {
            partial_sort(&mut hits, returned, &compare);
        }
    }
    hits.truncate(returned);
    let Some(dest) = o.store else {
        let fields =
            usize::from(o.with_dist) + usize::from(o.with_hash) + usize::from(o.with_coord);
        let items = hits
            .into_iter()
            .map(|h| {
                if fields == 0 {
                    return Reply::Bulk(h.member);
                }
                let mut item = vec![Reply::Bulk(h.member)];
                if o.with_dist {
                    item.push(distance_reply(h.dist / unit));
                }
                if o.with_hash {
                    item.push(Reply::Int(h.score as i64));
                }
                if o.with_coord {
                    item.push(coordinates_reply(h.lon, h.lat));
                }
                Reply::Array(item)
            })
            .collect();
        return Ok(Reply::Array(items));
    };
    if hits.is_empty() {
        return finish_empty(ctx, Some(dest), form);
    }
    let mut stored = ZSet::default();
    for h in &hits {
        stored.insert(
            &h.member,
            if o.store_dist { h.dist / unit } else { h.score },
        );
    }
    let name = store_event(form);
    ctx.store_result(dest, Some(Value::ZSet(Box::new(stored))), event::ZSET, name);
    Ok(Reply::Int(returned as i64))
}

/// The event of a search that stores its result.
fn store_event(form: Form) -> &'static str {
    match form {
        Form::SearchStore => "geosearchstore",
        _ => "georadiusstore",
    }
}

/// A search that found nothing: a destination is deleted (reply 0), else an empty array.
fn finish_empty(ctx: &mut Ctx, store: Option<&[u8]>, form: Form) -> CmdResult {
    match store {
        Some(dest) => {
            ctx.store_result(dest, None, event::ZSET, store_event(form));
            Ok(Reply::Int(0))
        }
        None => Ok(Reply::Array(Vec::new())),
    }
}

/// Sorts enough of `v` that its first `k` elements are the `k` smallest in order, as Redis's
/// pqsort (a partial quicksort, unstable: its order of equal elements is Redis's).
fn partial_sort<T>(v: &mut [T], k: usize, cmp: &impl Fn(&T, &T) -> Ordering) {
    let c = |v: &[T], a: usize, b: usize| cmp(&v[a], &v[b]) as i32;
    let med3 = |v: &[T], a: usize, b: usize, m: usize| {
        if c(v, a, b) < 0 {
            if c(v, b, m) < 0 {
                b
            } else if c(v, a, m) < 0 {
                m
            } else {
                a
            }
        } else if c(v, b, m) > 0 {
            b
        } else if c(v, a, m) < 0 {
            a
        } else {
            m
        }
    };
    let (mut lo, mut n) = (0usize, v.len());
    loop {
        let a = &mut v[lo..lo + n];
        if n < 7 {
            for m in 1..n {
                let mut j = m;
                while j > 0 && c(a, j - 1, j) > 0 {
                    a.swap(j, j - 1);
                    j -= 1;
                }
            }
            return;
        }
        let mut pm = n / 2;
        if n > 7 {
            let (mut pl, mut pn) = (0, n - 1);
            if n > 40 {
                let d = n / 8;
                pl = med3(a, pl, pl + d, pl + 2 * d);
                pm = med3(a, pm - d, pm, pm + d);
                pn = med3(a, pn - 2 * d, pn - d, pn);
            }
            pm = med3(a, pl, pm, pn);
        }
        a.swap(0, pm);
        let (mut pa, mut pb) = (1usize, 1usize);
        let (mut pc, mut pd) = (n - 1, n - 1);
        loop {
            while pb <= pc {
                let r = c(a, pb, 0);
                if r > 0 {
                    break;
                }
                if r == 0 {
                    a.swap(pa, pb);
                    pa += 1;
                }
                pb += 1;
            }
            while pb <= pc {
                let r = c(a, pc, 0);
                if r < 0 {
                    break;
                }
                if r == 0 {
                    a.swap(pc, pd);
                    pd -= 1;
                }
                pc -= 1;
            }
            if pb > pc {
                break;
            }
            a.swap(pb, pc);
            pb += 1;
            pc -= 1;
        }
        let r = pa.min(pb - pa);
        for i in 0..r {
            a.swap(i, pb - r + i);
        }
        let r = (pd - pc).min(n - 1 - pd);
        for i in 0..r {
            a.swap(pb + i, n - r + i);
        }
        let left = pb - pa;
        if left > 1 && lo < k {
            partial_sort(&mut v[lo..lo + left], k - lo, cmp);
        }
        let right = pd - pc;
        if right <= 1 {
            return;
        }
        lo += n - right;
        n = right;
        if lo >= k {
            return;
        }
    }
}

pub fn georadius(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    search_generic(ctx, args, Form::Radius { store: true })
}

pub fn georadius_ro(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    search_generic(ctx, args, Form::Radius { store: false })
}

pub fn georadiusbymember(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    search_generic(ctx, args, Form::RadiusByMember { store: true })
}

pub fn georadiusbymember_ro(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    search_generic(ctx, args, Form::RadiusByMember { store: false })
}

pub fn geosearch(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    search_generic(ctx, args, Form::Search)
}

pub fn geosearchstore(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    search_generic(ctx, args, Form::SearchStore)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn score_of(lon: f64, lat: f64) -> u64 {
        encode(WGS84_LONG, WGS84_LAT, lon, lat, STEP_MAX)
            .unwrap()
            .bits
    }

    #[test]
    fn encodes_as_redis() {
        assert_eq!(score_of(-73.9454966, 40.747533), 1791875804419201);
        assert_eq!(score_of(13.361389, 38.115556), 3479099956230698);
        assert_eq!(score_of(180.0, 0.0), 10133099161583616);
        assert_eq!(score_of(-180.0, LAT_MIN), 0);
        let (lon, lat) = position(1791875804419201.0);
        assert_eq!(human(lon), "-73.94549578428268433");
        assert_eq!(human(lat), "40.74753227099792952");
        assert_eq!(human(position(3377699720527872.0).0), "0.00000268220901489");
        assert_eq!(
            human(position(13510798882111488.0).1),
            "85.0511287799999991"
        );
        assert_eq!(geohash_text(2157242200379188.0), "ezs42e44yx0");
        assert_eq!(geohash_text(0.0), "00bh0hbj200");
        assert_eq!(human(position(-1.0).0), "180");
    }

    #[test]
    fn distances_as_redis() {
        let (a, b) = (position(3479099956230698.0), position(3479447370796909.0));
        assert_eq!(distance_text(distance(a.0, a.1, b.0, b.1)), "166274.1516");
        assert_eq!(distance_text(0.00005), "0.0000");
        assert_eq!(distance_text(123456.78905), "123456.7890");
        assert_eq!(distance_text(0.7750), "0.7750");
        assert_eq!(distance_text(-0.0), "0.0000");
    }

    #[test]
    fn cells_and_steps_as_redis() {
        let search = Search {
            lon: -73.9798091,
            lat: 40.7598464,
            shape: Shape::Radius(3.0),
            unit: 1000.0,
        };
        let cells = search.cells();
        assert_eq!(cells[0].step, 12);
        assert_eq!([cells[3], cells[5], cells[7]], [NO_CELL; 3]);
        let huge = Search {
            lon: 0.0,
            lat: 0.0,
            shape: Shape::Radius(50000.0),
            unit: 1000.0,
        };
        assert_eq!(huge.cells()[0].step, 1);
    }

    #[test]
    fn partial_sort_orders_the_head() {
        let mut v: Vec<i32> = (0..100).map(|i| (i * 37) % 101).collect();
        partial_sort(&mut v, 10, &|a: &i32, b: &i32| a.cmp(b));
        let mut sorted = v.clone();
        sorted.sort();
        assert_eq!(v[..10], sorted[..10]);
    }
}
