package policies

import (
	"fmt"
	"math"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"
)

// source remembers where each value of a policy came from, so that checks
// after decoding can point at the line and column.
type source struct {
	file   string
	values map[string]*yaml.Node // dotted path -> value node
	keys   map[string]*yaml.Node // dotted path -> key node
	env    map[string]string     // dotted path -> environment variable that set it
	bad    map[string]bool       // paths with a type error already reported
	dsnEnv map[string]string     // dotted path of a dsn: env:NAME -> NAME, once resolved
	root   *yaml.Node
}

func newSource(file string) *source {
	return &source{file: file, values: map[string]*yaml.Node{}, keys: map[string]*yaml.Node{}, env: map[string]string{},
		bad: map[string]bool{}, dsnEnv: map[string]string{}}
}

// has reports whether path was given (in the file, non-null, or by the
// environment).
func (s *source) has(path string) bool {
	if _, ok := s.env[path]; ok {
		return true
	}
	_, ok := s.values[path]
	return ok
}

// errAt builds a problem at path: at its value, else its key, else the
// nearest parent that has a position.
func (s *source) errAt(path, value string, allowed []string, format string, args ...any) ValidationError {
	e := ValidationError{File: s.file, Field: path, Value: value, Msg: fmt.Sprintf(format, args...), Allowed: allowed}
	if v, ok := s.env[path]; ok {
		e.Msg = "set by " + v + ": " + e.Msg
		return e
	}
	for p := path; ; p = parentPath(p) {
		n := s.values[p]
		if n == nil {
			n = s.keys[p]
		}
		if n == nil && p == "" {
			n = s.root
		}
		if n != nil {
			e.Line, e.Column = n.Line, n.Column
			return e
		}
		if p == "" {
			return e
		}
	}
}

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

func childPath(path, key string) string {
	if !identRE.MatchString(key) {
		return path + "[" + strconv.Quote(key) + "]"
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

func indexPath(path string, i int) string { return fmt.Sprintf("%s[%d]", path, i) }

// parentPath strips the last element: a.b[2] -> a.b, a.b -> a, a -> "".
func parentPath(p string) string {
	if strings.HasSuffix(p, "]") {
		if i := strings.LastIndex(p, "["); i >= 0 {
			return p[:i]
		}
	}
	if i := strings.LastIndex(p, "."); i >= 0 {
		return p[:i]
	}
	return ""
}

// fieldInfo is one struct field's policy key and rules (types.go).
type fieldInfo struct {
	index int
	key   string
	req   []string // ["1"]: required; else the target kinds that require it
	enum  []string
	kinds []string
	doc   string
}

var fieldCache sync.Map // reflect.Type -> []fieldInfo

func structFields(t reflect.Type) []fieldInfo {
	if v, ok := fieldCache.Load(t); ok {
		return v.([]fieldInfo)
	}
	var out []fieldInfo
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		key := sf.Tag.Get("yaml")
		if !sf.IsExported() || key == "" || key == "-" {
			continue
		}
		fi := fieldInfo{index: i, key: key, doc: sf.Tag.Get("doc")}
		split := func(s string) []string {
			if s == "" {
				return nil
			}
			return strings.Split(s, ",")
		}
		fi.req, fi.enum, fi.kinds = split(sf.Tag.Get("req")), split(sf.Tag.Get("enum")), split(sf.Tag.Get("kinds"))
		out = append(out, fi)
	}
	fieldCache.Store(t, out)
	return out
}

func (fi *fieldInfo) required() bool { return len(fi.req) == 1 && fi.req[0] == "1" }

// decoder turns a yaml.Node tree into policy structs, collecting every
// problem instead of stopping at the first.
type decoder struct {
	src   *source
	errs  ValidationErrors
	nodes int
}

const (
	maxNodes = 200000
	maxDepth = 64
)

func (d *decoder) errorf(n *yaml.Node, path, value string, allowed []string, format string, args ...any) {
	e := ValidationError{File: d.src.file, Field: path, Value: value, Msg: fmt.Sprintf(format, args...), Allowed: allowed}
	if n != nil {
		e.Line, e.Column = n.Line, n.Column
	}
	d.src.bad[path] = true
	d.errs = append(d.errs, e)
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!str":
			return fmt.Sprintf("the string %q", truncate(n.Value))
		case "!!int", "!!float":
			return "the number " + truncate(n.Value)
		case "!!bool":
			return "the boolean " + n.Value
		case "!!null":
			return "null"
		}
	}
	return "a " + strings.TrimPrefix(n.ShortTag(), "!!")
}

func truncate(s string) string {
	if len(s) > 60 {
		return s[:57] + "..."
	}
	return s
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" }

// secretKey reports whether a key names a secret value (password, token,
// secret, ...), as opposed to a reference (password_file).
func secretKey(key string) bool {
	k := strings.ToLower(key)
	if strings.HasSuffix(k, "_file") || strings.HasSuffix(k, "_env") {
		return false
	}
	for _, w := range []string{"password", "passwd", "passphrase", "secret", "token", "apikey", "api_key", "private_key"} {
		if strings.Contains(k, w) {
			return true
		}
	}
	return false
}

type nodeDecoder interface {
	decodeNode(d *decoder, n *yaml.Node, path string)
}

var (
	scalarType      = reflect.TypeFor[scalar]()
	nodeDecoderType = reflect.TypeFor[nodeDecoder]()
)

// decode stores n into v (addressable), reporting problems under path.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string, fi *fieldInfo, depth int) {
	for i := 0; n.Kind == yaml.AliasNode; i++ {
		if n.Alias == nil || i > maxDepth {
			d.errorf(n, path, "", nil, "bad alias")
			return
		}
		n = n.Alias
	}
	d.nodes++
	if d.nodes > maxNodes || depth > maxDepth {
		if d.nodes == maxNodes+1 || depth == maxDepth+1 {
			d.errorf(n, path, "", nil, "policy too large or too deeply nested")
		}
		return
	}
	if isNull(n) {
		return // same as absent
	}
	d.src.values[path] = n
	secret := fi != nil && secretKey(fi.key)
	shown := func() string {
		if secret {
			return ""
		}
		return n.Value
	}
	if v.CanAddr() && v.Addr().Type().Implements(nodeDecoderType) {
		v.Addr().Interface().(nodeDecoder).decodeNode(d, n, path)
		return
	}
	if v.CanAddr() && v.Addr().Type().Implements(scalarType) {
		if n.Kind != yaml.ScalarNode {
			d.errorf(n, path, "", nil, "expected a string, got %s", describe(n))
			return
		}
		if r, ok := v.Addr().Interface().(*SecretRef); ok && secret {
			// password: env:NAME only
			if err := checkRef(n.Value, false); err != nil {
				d.errorf(n, path, "", nil, "%v", err)
				return
			}
			*r = SecretRef(n.Value)
			return
		}
		if err := v.Addr().Interface().(scalar).parseScalar(n.Value); err != nil {
			d.errorf(n, path, shown(), nil, "%v", err)
		}
		return
	}
	switch v.Kind() {
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.errorf(n, path, "", nil, "expected a string, got %s", describe(n))
			return
		}
		if fi != nil && len(fi.enum) > 0 && !slices.Contains(fi.enum, n.Value) {
			d.errorf(n, path, n.Value, fi.enum, "%q is not allowed", n.Value)
			return
		}
		if secret {
			d.errorf(n, path, "", nil, "inline secrets are not allowed: use %s_file: PATH or env:NAME", fi.key)
			return
		}
		v.SetString(n.Value)
	case reflect.Int:
		i, err := strconv.ParseInt(n.Value, 0, 64)
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" || err != nil || i > math.MaxInt32 {
			d.errorf(n, path, shown(), nil, "expected an integer, got %s", describe(n))
			return
		}
		if i < 0 {
			d.errorf(n, path, n.Value, nil, "must not be negative")
			return
		}
		v.SetInt(i)
	case reflect.Float64:
		f, err := strconv.ParseFloat(n.Value, 64)
		if n.Kind != yaml.ScalarNode || (n.ShortTag() != "!!int" && n.ShortTag() != "!!float") || err != nil ||
			math.IsInf(f, 0) || math.IsNaN(f) {
			d.errorf(n, path, shown(), nil, "expected a number, got %s", describe(n))
			return
		}
		v.SetFloat(f)
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" {
			d.errorf(n, path, shown(), nil, "expected true or false, got %s", describe(n))
			return
		}
		v.SetBool(strings.EqualFold(n.Value, "true"))
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		d.decode(n, p.Elem(), path, fi, depth)
		v.Set(p)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.errorf(n, path, "", nil, "expected a list, got %s (write [a, b] or one \"- item\" per line)", describe(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, c := range n.Content {
			d.decode(c, s.Index(i), indexPath(path, i), fi, depth+1)
		}
		v.Set(s)
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			d.errorf(n, path, "", nil, "expected a mapping, got %s", describe(n))
			return
		}
		m := reflect.MakeMap(v.Type())
		d.eachKey(n, path, func(key string, k, val *yaml.Node) {
			p := childPath(path, key)
			d.src.keys[p] = k
			e := reflect.New(v.Type().Elem()).Elem()
			d.decode(val, e, p, nil, depth+1)
			m.SetMapIndex(reflect.ValueOf(key), e)
		})
		v.Set(m)
	case reflect.Struct:
		d.decodeStruct(n, v, path, depth)
	default:
		panic("policies: no decoder for " + v.Type().String())
	}
}

// eachKey calls fn for each key of a mapping, reporting non-string,
// duplicate and merge keys.
func (d *decoder) eachKey(n *yaml.Node, path string, fn func(key string, k, v *yaml.Node)) {
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || isNull(k) {
			d.errorf(k, path, "", nil, "keys must be strings, got %s", describe(k))
			continue
		}
		if k.Value == "<<" && k.ShortTag() == "!!merge" {
			d.errorf(k, path, "", nil, "merge keys (<<) are not supported: repeat the keys")
			continue
		}
		if first, dup := seen[k.Value]; dup {
			d.errorf(k, childPath(path, k.Value), "", nil, "duplicate key (first at line %d)", first.Line)
			continue
		}
		seen[k.Value] = k
		fn(k.Value, k, v)
	}
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string, depth int) {
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "", nil, "expected a mapping, got %s", describe(n))
		return
	}
	fields := structFields(v.Type())
	// Targets: which keys apply depends on the kind.
	kind := ""
	for _, fi := range fields {
		if len(fi.kinds) > 0 {
			kind = mappingScalar(n, "kind")
			if !slices.Contains(Kinds, kind) {
				kind = ""
			}
			break
		}
	}
	applies := func(fi *fieldInfo) bool { return kind == "" || len(fi.kinds) == 0 || slices.Contains(fi.kinds, kind) }
	allowed := func() []string {
		var keys []string
		for i := range fields {
			if applies(&fields[i]) {
				keys = append(keys, fields[i].key)
			}
		}
		return keys
	}
	present := map[string]bool{}
	d.eachKey(n, path, func(key string, k, val *yaml.Node) {
		p := childPath(path, key)
		i := slices.IndexFunc(fields, func(f fieldInfo) bool { return f.key == key })
		if i < 0 {
			if secretKey(key) && !(val.Kind == yaml.ScalarNode && checkRef(val.Value, false) == nil) {
				d.errorf(k, p, "", nil, "inline secrets are not allowed: use password_file: PATH or env:NAME")
				return
			}
			msg := "unknown key"
			if s := suggest(key, allowed()); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			}
			d.errorf(k, p, "", allowed(), "%s", msg)
			return
		}
		fi := &fields[i]
		d.src.keys[p] = k
		if !applies(fi) {
			d.errorf(k, p, "", allowed(), "not allowed for kind %s", kind)
			return
		}
		if !isNull(val) {
			present[key] = true
		}
		d.decode(val, v.Field(fi.index), p, fi, depth+1)
	})
	for _, fi := range fields {
		if present[fi.key] {
			continue
		}
		if fi.required() {
			d.errorf(n, childPath(path, fi.key), "", fi.enum, "required")
		} else if kind != "" && slices.Contains(fi.req, kind) {
			d.errorf(n, childPath(path, fi.key), "", nil, "required for kind %s", kind)
		}
	}
}

// mappingScalar returns the scalar value of key in mapping n, or "".
func mappingScalar(n *yaml.Node, key string) string {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key && n.Content[i+1].Kind == yaml.ScalarNode {
			return n.Content[i+1].Value
		}
	}
	return ""
}

// suggest returns the allowed key closest to key, if close enough.
func suggest(key string, allowed []string) string {
	best, bestD := "", 3
	for _, a := range allowed {
		if dist := levenshtein(key, a); dist < bestD {
			best, bestD = a, dist
		}
	}
	return best
}

func levenshtein(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 99
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			c := prev[j-1]
			if a[i-1] != b[j-1] {
				c++
			}
			cur[j] = min(c, prev[j]+1, cur[j-1]+1)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
