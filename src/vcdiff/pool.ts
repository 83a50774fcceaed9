export interface VcdiffPoolOptions { size?: number }
export class VcdiffPool {}
