package policies

import (
	"embed"
	"fmt"
	"strings"
)

//go:embed examples/*.yaml
var examples embed.FS

// Presets lists the example presets besides the generic one ("").
var Presets = []string{"magento2", "orocommerce"}

// Example returns a commented, valid policy: the generic one for "", or
// the preset named (Presets).
func Example(preset string) (string, error) {
	name := preset
	switch preset {
	case "", "generic":
		name = "generic"
	case "magento2", "orocommerce":
	default:
		return "", fmt.Errorf("unknown preset %q (presets: %s)", preset, strings.Join(Presets, ", "))
	}
	data, err := examples.ReadFile("examples/" + name + ".yaml")
	if err != nil {
		return "", err
	}
	return string(data), nil
}
