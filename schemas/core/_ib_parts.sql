SELECT DISTINCT 'building', ld FROM _ib_fw UNION SELECT DISTINCT 'unit', dy FROM _ib_fw
UNION SELECT DISTINCT 'room', fh FROM _ib_fw
UNION SELECT DISTINCT 'building', building FROM _ib_dev UNION SELECT DISTINCT 'unit', unit FROM _ib_dev
UNION SELECT DISTINCT 'room', room FROM _ib_dev
UNION SELECT DISTINCT 'building', building FROM _ib_holders
UNION SELECT DISTINCT 'unit', unit FROM _ib_holders UNION SELECT DISTINCT 'room', room FROM _ib_holders
