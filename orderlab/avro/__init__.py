"""Orders as Avro records whose schema evolves: lesson 11's library.

- :mod:`.codec`: one datum as Avro binary and back (fastavro), a hex dump,
  which bytes hold which field;
- :mod:`.compat`: whether a reader's schema can read a writer's, by Avro's
  resolution rules (BACKWARD, FORWARD, FULL);
- :mod:`.registry`: an in-process schema registry: ids, subjects, versions,
  the compatibility check on registration;
- :mod:`.orders`: the order's schemas (v1, v2 with ``channel``, v3 with a
  rename) and six changes to judge;
- :mod:`.wire`: Avro orders on a Kafka topic, the schema id in a header,
  dead letters for what cannot be read.

The JSON records of the main pipeline (:mod:`orderlab.events`) are not
changed by any of this.
"""

from .codec import AvroError, decode, encode, field_layout, hex_dump, parse, resolution_error
from .compat import Compatibility, can_read, check_compatibility
from .orders import (
    ORDER_V1, ORDER_V2, ORDER_V3, ORDER_V3_ALIASED, SchemaChange, changes_table, field_default, order_from_record,
    order_record, schema_changes, why_not,
)
from .registry import IncompatibleSchema, RegisteredSchema, SchemaRegistry, SchemaRegistryError, UnknownSchemaId
from .wire import (
    SCHEMA_ID_HEADER, AvroOrderReader, DecodedOrder, ReadResult, UndecodableRecord, avro_topic, create_avro_topics,
    decode_record, readings_table, schema_id_header, send_order, subject_for,
)

__all__ = [
    "AvroError", "AvroOrderReader", "Compatibility", "DecodedOrder", "IncompatibleSchema", "ORDER_V1", "ORDER_V2",
    "ORDER_V3", "ORDER_V3_ALIASED", "ReadResult", "RegisteredSchema", "SCHEMA_ID_HEADER", "SchemaChange",
    "SchemaRegistry", "SchemaRegistryError", "UndecodableRecord", "UnknownSchemaId", "avro_topic", "can_read",
    "changes_table", "check_compatibility", "create_avro_topics", "decode", "decode_record", "encode", "field_default",
    "field_layout", "hex_dump", "order_from_record", "order_record", "parse", "readings_table", "resolution_error",
    "schema_changes", "schema_id_header", "send_order", "subject_for", "why_not",
]
