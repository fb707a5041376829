package postgres

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSplitTOC(t *testing.T) {
	list := `;
; Archive created at 2026-12-07 20:12:02 UTC
;     TOC Entries: 8
;
; Selected TOC Entries:
;
3360; 0 16395 TABLE DATA public oro_order lifeboat
3368; 0 0 SEQUENCE SET public oro_order_id_seq lifeboat
3215; 2606 16402 CONSTRAINT public oro_order oro_order_pkey lifeboat
3213; 1259 16430 INDEX public oro_order_customer_user_id_idx lifeboat
3369; 0 0 COMMENT public INDEX oro_order_customer_user_id_idx lifeboat
3216; 2606 16562 FK CONSTRAINT public oro_order fk_cu lifeboat
3370; 0 0 COMMENT public CONSTRAINT fk_cu ON oro_order lifeboat
3371; 0 0 INDEX ATTACH public oro_order_p1_idx lifeboat
3372; 2620 16600 TRIGGER public oro_order audit lifeboat
3373; 0 16395 TABLE DATA public "INDEX x" lifeboat`
	now, later := SplitTOC([]byte(list))
	require.Equal(t, `3360; 0 16395 TABLE DATA public oro_order lifeboat
3368; 0 0 SEQUENCE SET public oro_order_id_seq lifeboat
3215; 2606 16402 CONSTRAINT public oro_order oro_order_pkey lifeboat
3213; 1259 16430 INDEX public oro_order_customer_user_id_idx lifeboat
3373; 0 16395 TABLE DATA public "INDEX x" lifeboat
`, string(now))
	require.Equal(t, `3369; 0 0 COMMENT public INDEX oro_order_customer_user_id_idx lifeboat
3216; 2606 16562 FK CONSTRAINT public oro_order fk_cu lifeboat
3370; 0 0 COMMENT public CONSTRAINT fk_cu ON oro_order lifeboat
3371; 0 0 INDEX ATTACH public oro_order_p1_idx lifeboat
3372; 2620 16600 TRIGGER public oro_order audit lifeboat
`, string(later))
	now, later = SplitTOC(nil)
	require.Empty(t, now)
	require.Empty(t, later)
}

// TestListTOC: the in-process listing names the items pg_restore --list
// names, in its order; a short head asks for more, an unknown format
// version for pg_restore.
func TestListTOC(t *testing.T) {
	arch, err := os.ReadFile("testdata/table-1.14.dump")
	require.NoError(t, err)
	list, ok, known := ListTOC(arch)
	require.True(t, ok)
	require.True(t, known)
	require.Equal(t, `3346; 0 16834 TABLE DATA public Odd T lifeboat
3354; 0 0 SEQUENCE SET public Odd T_id_seq lifeboat
3201; 2606 16841 CONSTRAINT public Odd T Odd T_pkey lifeboat
3202; 1259 16842 INDEX public Odd T_v_idx lifeboat
`, string(list))
	for _, n := range []int{0, 5, 60, 200, len(arch) / 2} {
		_, ok, known := ListTOC(arch[:n])
		require.False(t, ok, n)
		require.True(t, known, n)
	}
	for _, bad := range [][]byte{append([]byte("PGDMP\x01\x0d"), arch[7:]...), []byte("PGDMQ"), []byte("not an archive")} {
		_, ok, known = ListTOC(bad)
		require.False(t, ok)
		require.False(t, known)
	}

	bin, err := Binary("", "pg_restore")
	if err != nil {
		if os.Getenv("LIFEBOAT_REQUIRE_POSTGRES") != "" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	cmd := exec.Command(bin, "--list")
	cmd.Stdin = bytes.NewReader(arch)
	out, err := cmd.Output()
	require.NoError(t, err)
	var items []string
	for _, line := range strings.Split(string(out), "\n") {
		if line != "" && !strings.HasPrefix(line, ";") {
			items = append(items, line)
		}
	}
	require.Equal(t, strings.Join(items, "\n")+"\n", string(list))
}
