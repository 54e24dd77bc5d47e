//! A canonical byte form of any serialisable value, for fingerprints.
//!
//! A fingerprint must not change between processes or platforms for the
//! same value. JSON does not promise that: a `HashMap` serialises its
//! entries in an order that changes with every process's random hash seed.
//! This encoder writes serde's data model as tagged, length-prefixed bytes
//! and writes every map's entries sorted by the bytes of their keys, so the
//! same value always gives the same bytes. Everything but maps streams
//! straight into the sink, so a value of hundreds of MB is hashed without a
//! second copy in memory; only a map's own entries are buffered to be
//! sorted.

use std::fmt;

use serde::ser::{self, Serialize};

/// Where the canonical bytes go.
pub(crate) trait Sink {
    fn put(&mut self, bytes: &[u8]);
}

impl Sink for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

/// Writes `value`'s canonical bytes to `sink`.
pub(crate) fn encode<V: Serialize + ?Sized>(value: &V, sink: &mut dyn Sink) -> Result<(), Error> {
    value.serialize(Encoder { sink })
}

/// Why a value could not be encoded: what its `Serialize` impl reported.
#[derive(Debug)]
pub(crate) struct Error(String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl ser::Error for Error {
    fn custom<M: fmt::Display>(message: M) -> Self {
        Self(message.to_string())
    }
}

mod tag {
    pub(super) const BOOL: u8 = 1;
    pub(super) const INT: u8 = 2;
    pub(super) const UINT: u8 = 3;
    pub(super) const FLOAT: u8 = 4;
    pub(super) const CHAR: u8 = 5;
    pub(super) const STR: u8 = 6;
    pub(super) const BYTES: u8 = 7;
    pub(super) const NONE: u8 = 8;
    pub(super) const SOME: u8 = 9;
    pub(super) const UNIT: u8 = 10;
    pub(super) const VARIANT: u8 = 11;
    pub(super) const NEWTYPE: u8 = 12;
    pub(super) const SEQ: u8 = 13;
    pub(super) const MAP: u8 = 14;
    pub(super) const STRUCT: u8 = 15;
    pub(super) const END: u8 = 16;
}

struct Encoder<'a> {
    sink: &'a mut dyn Sink,
}

impl Encoder<'_> {
    fn tagged(&mut self, tag: u8, bytes: &[u8]) {
        self.sink.put(&[tag]);
        self.sink.put(bytes);
    }

    /// A number as its shortest little-endian bytes, after a length byte:
    /// the same value gives the same bytes whatever its integer type, and a
    /// `Vec<u8>` input of hundreds of MB costs about three bytes an element
    /// rather than seventeen.
    fn number(&mut self, tag: u8, v: u128) {
        let bytes = v.to_le_bytes();
        let len = bytes.len() - (v.leading_zeros() / 8) as usize;
        self.sink.put(&[tag, len as u8]);
        self.sink.put(&bytes[..len]);
    }

    fn text(&mut self, tag: u8, bytes: &[u8]) {
        self.sink.put(&[tag]);
        self.sink.put(&(bytes.len() as u64).to_le_bytes());
        self.sink.put(bytes);
    }
}

impl<'a> ser::Serializer for Encoder<'a> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Seq<'a>;
    type SerializeTuple = Seq<'a>;
    type SerializeTupleStruct = Seq<'a>;
    type SerializeTupleVariant = Seq<'a>;
    type SerializeMap = Map<'a>;
    type SerializeStruct = Seq<'a>;
    type SerializeStructVariant = Seq<'a>;

    fn serialize_bool(mut self, v: bool) -> Result<(), Error> {
        self.tagged(tag::BOOL, &[u8::from(v)]);
        Ok(())
    }
    fn serialize_i8(self, v: i8) -> Result<(), Error> {
        self.serialize_i128(v.into())
    }
    fn serialize_i16(self, v: i16) -> Result<(), Error> {
        self.serialize_i128(v.into())
    }
    fn serialize_i32(self, v: i32) -> Result<(), Error> {
        self.serialize_i128(v.into())
    }
    fn serialize_i64(self, v: i64) -> Result<(), Error> {
        self.serialize_i128(v.into())
    }
    fn serialize_i128(mut self, v: i128) -> Result<(), Error> {
        // Zigzag, so small negative numbers are short too.
        self.number(tag::INT, ((v << 1) ^ (v >> 127)) as u128);
        Ok(())
    }
    fn serialize_u8(self, v: u8) -> Result<(), Error> {
        self.serialize_u128(v.into())
    }
    fn serialize_u16(self, v: u16) -> Result<(), Error> {
        self.serialize_u128(v.into())
    }
    fn serialize_u32(self, v: u32) -> Result<(), Error> {
        self.serialize_u128(v.into())
    }
    fn serialize_u64(self, v: u64) -> Result<(), Error> {
        self.serialize_u128(v.into())
    }
    fn serialize_u128(mut self, v: u128) -> Result<(), Error> {
        self.number(tag::UINT, v);
        Ok(())
    }
    fn serialize_f32(self, v: f32) -> Result<(), Error> {
        self.serialize_f64(v.into())
    }
    fn serialize_f64(mut self, v: f64) -> Result<(), Error> {
        self.tagged(tag::FLOAT, &v.to_bits().to_le_bytes());
        Ok(())
    }
    fn serialize_char(mut self, v: char) -> Result<(), Error> {
        self.tagged(tag::CHAR, &u32::from(v).to_le_bytes());
        Ok(())
    }
    fn serialize_str(mut self, v: &str) -> Result<(), Error> {
        self.text(tag::STR, v.as_bytes());
        Ok(())
    }
    fn serialize_bytes(mut self, v: &[u8]) -> Result<(), Error> {
        self.text(tag::BYTES, v);
        Ok(())
    }
    fn serialize_none(mut self) -> Result<(), Error> {
        self.tagged(tag::NONE, &[]);
        Ok(())
    }
    fn serialize_some<V: Serialize + ?Sized>(mut self, value: &V) -> Result<(), Error> {
        self.tagged(tag::SOME, &[]);
        value.serialize(self)
    }
    fn serialize_unit(mut self) -> Result<(), Error> {
        self.tagged(tag::UNIT, &[]);
        Ok(())
    }
    fn serialize_unit_struct(self, name: &'static str) -> Result<(), Error> {
        self.serialize_str(name)
    }
    fn serialize_unit_variant(
        mut self,
        _: &'static str,
        index: u32,
        variant: &'static str,
    ) -> Result<(), Error> {
        self.tagged(tag::VARIANT, &index.to_le_bytes());
        self.serialize_str(variant)
    }
    fn serialize_newtype_struct<V: Serialize + ?Sized>(
        mut self,
        _: &'static str,
        value: &V,
    ) -> Result<(), Error> {
        self.tagged(tag::NEWTYPE, &[]);
        value.serialize(self)
    }
    fn serialize_newtype_variant<V: Serialize + ?Sized>(
        mut self,
        _: &'static str,
        index: u32,
        variant: &'static str,
        value: &V,
    ) -> Result<(), Error> {
        self.tagged(tag::VARIANT, &index.to_le_bytes());
        self.text(tag::STR, variant.as_bytes());
        value.serialize(self)
    }
    fn serialize_seq(mut self, _: Option<usize>) -> Result<Seq<'a>, Error> {
        self.tagged(tag::SEQ, &[]);
        Ok(Seq { sink: self.sink })
    }
    fn serialize_tuple(self, len: usize) -> Result<Seq<'a>, Error> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(self, _: &'static str, len: usize) -> Result<Seq<'a>, Error> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        mut self,
        _: &'static str,
        index: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Seq<'a>, Error> {
        self.tagged(tag::VARIANT, &index.to_le_bytes());
        self.text(tag::STR, variant.as_bytes());
        self.tagged(tag::SEQ, &[]);
        Ok(Seq { sink: self.sink })
    }
    fn serialize_map(mut self, _: Option<usize>) -> Result<Map<'a>, Error> {
        self.tagged(tag::MAP, &[]);
        Ok(Map {
            sink: self.sink,
            entries: Vec::new(),
            key: None,
        })
    }
    fn serialize_struct(mut self, _: &'static str, _: usize) -> Result<Seq<'a>, Error> {
        self.tagged(tag::STRUCT, &[]);
        Ok(Seq { sink: self.sink })
    }
    fn serialize_struct_variant(
        mut self,
        _: &'static str,
        index: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Seq<'a>, Error> {
        self.tagged(tag::VARIANT, &index.to_le_bytes());
        self.text(tag::STR, variant.as_bytes());
        self.tagged(tag::STRUCT, &[]);
        Ok(Seq { sink: self.sink })
    }
}

/// Sequences, tuples and structs: their elements in order, then an end.
pub(crate) struct Seq<'a> {
    sink: &'a mut dyn Sink,
}

impl Seq<'_> {
    fn element<V: Serialize + ?Sized>(&mut self, value: &V) -> Result<(), Error> {
        value.serialize(Encoder {
            sink: &mut *self.sink,
        })
    }

    fn field<V: Serialize + ?Sized>(&mut self, name: &'static str, value: &V) -> Result<(), Error> {
        Encoder {
            sink: &mut *self.sink,
        }
        .text(tag::STR, name.as_bytes());
        self.element(value)
    }

    fn finish(self) -> Result<(), Error> {
        self.sink.put(&[tag::END]);
        Ok(())
    }
}

/// The element-wise compound serializers all write their elements in
/// order and then an end mark; they differ only in the method's name.
macro_rules! elements {
    ($($trait:ident :: $method:ident),* $(,)?) => {$(
        impl ser::$trait for Seq<'_> {
            type Ok = ();
            type Error = Error;
            fn $method<V: Serialize + ?Sized>(&mut self, value: &V) -> Result<(), Error> {
                self.element(value)
            }
            fn end(self) -> Result<(), Error> {
                self.finish()
            }
        }
    )*};
}

elements!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field,
);

/// Structs write each field's name before its value.
macro_rules! fields {
    ($($trait:ident),* $(,)?) => {$(
        impl ser::$trait for Seq<'_> {
            type Ok = ();
            type Error = Error;
            fn serialize_field<V: Serialize + ?Sized>(&mut self, name: &'static str, value: &V) -> Result<(), Error> {
                self.field(name, value)
            }
            fn end(self) -> Result<(), Error> {
                self.finish()
            }
        }
    )*};
}

fields!(SerializeStruct, SerializeStructVariant);

/// A map: its entries encoded one by one, sorted by their keys' bytes,
/// then written with their lengths.
pub(crate) struct Map<'a> {
    sink: &'a mut dyn Sink,
    entries: Vec<(Vec<u8>, Vec<u8>)>,
    key: Option<Vec<u8>>,
}

impl ser::SerializeMap for Map<'_> {
    type Ok = ();
    type Error = Error;
    fn serialize_key<K: Serialize + ?Sized>(&mut self, key: &K) -> Result<(), Error> {
        let mut bytes = Vec::new();
        encode(key, &mut bytes)?;
        self.key = Some(bytes);
        Ok(())
    }
    fn serialize_value<V: Serialize + ?Sized>(&mut self, value: &V) -> Result<(), Error> {
        let key = self
            .key
            .take()
            .ok_or_else(|| <Error as ser::Error>::custom("a map value came without its key"))?;
        let mut bytes = Vec::new();
        encode(value, &mut bytes)?;
        self.entries.push((key, bytes));
        Ok(())
    }
    fn end(mut self) -> Result<(), Error> {
        self.entries.sort_unstable();
        self.sink.put(&(self.entries.len() as u64).to_le_bytes());
        for (key, value) in &self.entries {
            for part in [key, value] {
                self.sink.put(&(part.len() as u64).to_le_bytes());
                self.sink.put(part);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashMap};

    use super::*;

    fn bytes<V: Serialize>(v: &V) -> Vec<u8> {
        let mut out = Vec::new();
        encode(v, &mut out).unwrap();
        out
    }

    #[test]
    fn maps_encode_alike_whatever_their_order() {
        let hashed: HashMap<String, Vec<u32>> = (0..200).map(|i| (format!("k{i}"), vec![i; 3])).collect();
        let sorted: BTreeMap<String, Vec<u32>> = hashed.clone().into_iter().collect();
        assert_eq!(bytes(&hashed), bytes(&sorted));
    }

    #[test]
    fn integers_encode_by_value_not_by_type_and_compactly() {
        assert_eq!(bytes(&7u8), bytes(&7u64));
        assert_eq!(bytes(&-3i8), bytes(&-3i128));
        assert_ne!(bytes(&3i64), bytes(&3u64), "signed and unsigned stay apart");
        assert_eq!(bytes(&vec![200u8; 4]).len(), 1 + 4 * 3 + 1);
        assert_ne!(bytes(&0u8), bytes(&256u16));
        assert_ne!(bytes(&i128::MIN), bytes(&i128::MAX));
    }

    #[test]
    fn different_values_encode_differently() {
        assert_ne!(bytes(&("ab", "c")), bytes(&("a", "bc")));
        assert_ne!(bytes(&vec![1u8, 2]), bytes(&vec![12u8]));
        assert_ne!(bytes(&Some(0u8)), bytes(&0u8));
        assert_ne!(bytes(&1.0f64), bytes(&1u64));
    }
}
