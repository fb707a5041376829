package postgres

import (
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
