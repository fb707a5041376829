package policies

import (
	"encoding/json"
	"reflect"
	"slices"
)

// SchemaID is the $id of the JSON Schema.
const SchemaID = "https://lifeboat-backup.github.io/schema/policy-v1.json"

// JSONSchema returns a JSON Schema (draft 2020-12) of the policy for
// editors (e.g. the YAML language server: `# yaml-language-server:
// $schema=...`). It is generated from the Go types, so it has the same
// keys, enumerations and per-kind target keys as the validator; formats
// the validator checks (durations, calendars, URLs, cross references)
// are described, and only partly expressed as patterns.
func JSONSchema() ([]byte, error) {
	s := schemaFor(reflect.TypeFor[Policy](), nil)
	s["$schema"] = "https://json-schema.org/draft/2020-12/schema"
	s["$id"] = SchemaID
	s["title"] = "lifeboat policy"
	return json.MarshalIndent(s, "", "  ")
}

type obj = map[string]any

var (
	durationSchema = obj{"type": "string", "pattern": `^(0|([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h|d|w))+)$`,
		"description": "duration: 15m, 26h, 7d, 2w, 1h30m"}
	calendarSchema = obj{"type": "string", "description": "systemd OnCalendar expression: daily, \"*-*-* 02:30:00\", \"Mon..Fri 02:00\""}
	refSchema      = obj{"type": "string", "minLength": 1, "description": "file path or env:NAME"}
	sizeSchema     = obj{"oneOf": []any{obj{"type": "integer", "minimum": 0},
		obj{"type": "string", "pattern": `^[0-9]+\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)?$`}}}
)

func schemaFor(t reflect.Type, fi *fieldInfo) obj {
	var s obj
	switch t {
	case reflect.TypeFor[Duration]():
		s = clone(durationSchema)
	case reflect.TypeFor[Calendar]():
		s = clone(calendarSchema)
	case reflect.TypeFor[SecretRef]():
		s = clone(refSchema)
		if fi != nil && secretKey(fi.key) {
			s = obj{"type": "string", "pattern": "^env:[A-Za-z_][A-Za-z0-9_]*$"}
		}
	case reflect.TypeFor[Size]():
		s = clone(sizeSchema)
	case reflect.TypeFor[Commands]():
		cmd := obj{"type": "string", "minLength": 1}
		s = obj{"oneOf": []any{cmd, obj{"type": "array", "items": cmd}}}
	case reflect.TypeFor[TableRules]():
		s = obj{"oneOf": []any{
			obj{"enum": []any{TableTruncate, TableSkip}},
			obj{"type": "object", "properties": obj{"where": obj{"type": "string"}},
				"additionalProperties": obj{
					"description": "column rule: null, hash, keep, mask, mask:keep_last=N, fixed:VALUE, fake:KIND, template:TEXT; or as a one-key mapping, e.g. {mask: keep_last=4}",
					"oneOf": []any{
						obj{"type": []any{"string", "null"}},
						obj{"type": "object", "additionalProperties": obj{"type": []any{"string", "null"}}},
					}}},
		}}
	default:
		switch t.Kind() {
		case reflect.String:
			s = obj{"type": "string"}
			if fi != nil && len(fi.enum) > 0 {
				s["enum"] = fi.enum
			}
		case reflect.Int:
			s = obj{"type": "integer", "minimum": 0}
		case reflect.Float64:
			s = obj{"type": "number"}
		case reflect.Bool:
			s = obj{"type": "boolean"}
		case reflect.Pointer:
			return schemaFor(t.Elem(), fi)
		case reflect.Slice:
			s = obj{"type": "array", "items": schemaFor(t.Elem(), fi)}
			if fi != nil {
				delete(s["items"].(obj), "description")
			}
		case reflect.Map:
			s = obj{"type": "object", "additionalProperties": schemaFor(t.Elem(), nil)}
		case reflect.Struct:
			s = structSchema(t)
		default:
			panic("policies: no schema for " + t.String())
		}
	}
	if fi != nil && fi.doc != "" {
		s["description"] = fi.doc
	}
	return s
}

func structSchema(t reflect.Type) obj {
	fields := structFields(t)
	props := obj{}
	var required []string
	byKind := map[string][]string{}
	reqByKind := map[string][]string{}
	perKind := false
	for i := range fields {
		fi := &fields[i]
		props[fi.key] = schemaFor(t.Field(fi.index).Type, fi)
		if fi.required() {
			required = append(required, fi.key)
		}
		if len(fi.kinds) > 0 {
			perKind = true
		}
		for _, k := range Kinds {
			if len(fi.kinds) == 0 || slices.Contains(fi.kinds, k) {
				byKind[k] = append(byKind[k], fi.key)
			}
			if slices.Contains(fi.req, k) {
				reqByKind[k] = append(reqByKind[k], fi.key)
			}
		}
	}
	s := obj{"type": "object", "properties": props, "additionalProperties": false}
	if len(required) > 0 {
		s["required"] = required
	}
	if perKind {
		var all []any
		for _, k := range Kinds {
			allowed := obj{}
			for _, key := range byKind[k] {
				allowed[key] = true
			}
			then := obj{"properties": allowed, "additionalProperties": false}
			if len(reqByKind[k]) > 0 {
				then["required"] = reqByKind[k]
			}
			all = append(all, obj{
				"if":   obj{"properties": obj{"kind": obj{"const": k}}, "required": []any{"kind"}},
				"then": then,
			})
		}
		s["allOf"] = all
	}
	return s
}

func clone(o obj) obj {
	c := obj{}
	for k, v := range o {
		c[k] = v
	}
	return c
}
